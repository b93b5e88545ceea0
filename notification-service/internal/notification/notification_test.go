package notification_test

import (
	"testing"

	"github.com/eventshop/notification-service/internal/notification"
)

func TestIDIsDeterministicAndDistinct(t *testing.T) {
	t.Parallel()
	a := notification.ID("o-1", notification.KindOrderConfirmed)
	if a != notification.ID("o-1", notification.KindOrderConfirmed) {
		t.Fatal("same order and kind gave two ids")
	}
	for _, other := range []string{
		notification.ID("o-1", notification.KindOrderCancelled),
		notification.ID("o-2", notification.KindOrderConfirmed),
	} {
		if other == a {
			t.Fatalf("id %s shared by different notifications", a)
		}
	}
}
