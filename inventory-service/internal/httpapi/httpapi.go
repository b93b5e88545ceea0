// Package httpapi is the inventory's HTTP API: the catalogue with its stock
// counts, readable by anyone and set by an administrator.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/problem"
)

// maxBody bounds a PUT body; a valid one is a few hundred bytes.
const maxBody = 64 << 10

// PutRequestSchema names the request schema a PUT body must satisfy.
const PutRequestSchema = "inventory.put-request"

// Catalogue is the use cases the API calls (app.App).
type Catalogue interface {
	Get(ctx context.Context, sku string) (stock.Item, error)
	List(ctx context.Context) ([]stock.Item, error)
	Put(ctx context.Context, sku string, p stock.Put) (stock.Item, bool, error)
}

// API serves /inventory.
type API struct {
	cat Catalogue
}

// New returns the API over cat.
func New(cat Catalogue) *API {
	return &API{cat: cat}
}

// Register mounts the routes on r, with their OpenAPI document at
// /openapi.json; PUT needs "Authorization: Bearer <adminToken>".
func (a *API) Register(r gin.IRouter, adminToken string) {
	r.GET("/inventory", a.list)
	r.GET("/inventory/:sku", a.get)
	r.PUT("/inventory/:sku", httpserver.BearerAuth(adminToken), a.put)
	r.GET("/openapi.json", gin.WrapH(openapi.Handler(openapi.Inventory)))
}

// Item is the public view of a catalogue item, its documented body.
type Item = api.StockItem

func view(it stock.Item) Item {
	return Item{SKU: it.SKU, Name: it.Name, PriceCents: it.PriceCents, Currency: it.Currency,
		Available: it.Available, Reserved: it.Reserved, Sold: it.Sold}
}

// List is the body of GET /inventory.
type List = api.StockList

func (a *API) list(c *gin.Context) {
	items, err := a.cat.List(c.Request.Context())
	if err != nil {
		c.Error(err)
		return
	}
	out := List{Items: make([]Item, 0, len(items))}
	for _, it := range items {
		out.Items = append(out.Items, view(it))
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) get(c *gin.Context) {
	sku, err := skuParam(c)
	if err != nil {
		c.Error(err)
		return
	}
	it, err := a.cat.Get(c.Request.Context(), sku)
	if err != nil {
		c.Error(err)
		return
	}
	c.JSON(http.StatusOK, view(it))
}

func (a *API) put(c *gin.Context) {
	sku, err := skuParam(c)
	if err != nil {
		c.Error(err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if err != nil {
		c.Error(fmt.Errorf("read body: %w", err))
		return
	}
	p, err := decodePut(body)
	if err != nil {
		c.Error(err)
		return
	}
	out, created, err := a.cat.Put(c.Request.Context(), sku, p)
	if err != nil {
		c.Error(err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Header("Location", "/inventory/"+sku)
	}
	c.JSON(status, view(out))
}

// decodePut reads a PUT body: the request schema first (it names what is
// wrong), then the typed value.
func decodePut(body []byte) (stock.Put, error) {
	if err := events.DefaultRegistry().ValidateRequest(PutRequestSchema, body); err != nil {
		return stock.Put{}, fmt.Errorf("request body: %w", err)
	}
	var p stock.Put
	if err := json.Unmarshal(body, &p); err != nil {
		return stock.Put{}, fmt.Errorf("request body: %w: %w", events.ErrInvalidEvent, err)
	}
	return p, nil
}

func skuParam(c *gin.Context) (string, error) {
	sku := c.Param("sku")
	if !events.ValidID(sku) {
		return "", fmt.Errorf("sku %q (want 1-64 of A-Z a-z 0-9 _ -): %w", sku, events.ErrInvalidID)
	}
	return sku, nil
}

// MapError is the service's one mapping from errors to problem responses.
func MapError(err error) problem.Problem {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("the body exceeds %d bytes", tooLarge.Limit))
	case errors.Is(err, events.ErrInvalidID):
		return problem.New(http.StatusBadRequest, "invalid-sku", err.Error())
	case errors.Is(err, events.ErrInvalidEvent):
		return problem.New(http.StatusBadRequest, "invalid-request", err.Error())
	case errors.Is(err, stock.ErrUnknownSKU):
		return problem.New(http.StatusNotFound, "unknown-sku", err.Error())
	case errors.Is(err, stock.ErrConflict):
		return problem.New(http.StatusConflict, "conflict", "the item kept changing while it was written; try again")
	default:
		return problem.Internal()
	}
}
