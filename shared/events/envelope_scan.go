package events

import (
	"errors"
	"fmt"
	"time"
)

// scanEnvelope reads the envelope without reflection: it is read by every
// consumer of every event, and encoding/json spent most of a consumer's
// decoding time on it. The envelope is one flat object whose attributes
// are all strings but data, an object kept raw. It reports ok = false,
// having read nothing, for the rare envelope it leaves to encoding/json
// (a string with an escape or a non-ASCII character in it); any other
// error is final.
func scanEnvelope(raw []byte, env *Envelope) (ok bool, err error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return true, errors.New("not JSON: not an object")
	}
	i++
	first := true
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return true, errors.New("not JSON: unexpected end")
		}
		if raw[i] == '}' {
			i++
			break
		}
		if !first {
			if raw[i] != ',' {
				return true, fmt.Errorf("not JSON: %q after a value", raw[i])
			}
			i = skipSpace(raw, i+1)
		}
		first = false
		key, next, plain, err := scanString(raw, i)
		if err != nil {
			return true, err
		}
		if !plain {
			return false, nil
		}
		i = skipSpace(raw, next)
		if i >= len(raw) || raw[i] != ':' {
			return true, errors.New("not JSON: no ':' after a key")
		}
		i = skipSpace(raw, i+1)
		if key == "data" {
			end, err := skipValue(raw, i)
			if err != nil {
				return true, err
			}
			env.Data = append([]byte(nil), raw[i:end]...)
			i = end
			continue
		}
		if i < len(raw) && raw[i] != '"' {
			return true, fmt.Errorf("/%s: not a string", key)
		}
		val, next, plain, err := scanString(raw, i)
		if err != nil {
			return true, err
		}
		if !plain {
			return false, nil
		}
		i = next
		switch key {
		case "specversion":
			env.SpecVersion = val
		case "id":
			env.ID = val
		case "source":
			env.Source = val
		case "type":
			env.Type = Type(val)
		case "subject":
			env.Subject = val
		case "time":
			t, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				return true, fmt.Errorf("/time: %q is not an RFC 3339 time", val)
			}
			env.Time = t
		case "datacontenttype":
			env.DataContentType = val
		case "dataschema":
			env.DataSchema = val
		case "traceparent":
			env.TraceParent = val
		default:
			return true, fmt.Errorf("unknown field %q", key)
		}
	}
	if i = skipSpace(raw, i); i != len(raw) {
		return true, errors.New("data after the JSON value")
	}
	return true, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the JSON string at b[i]; plain is false for one with an
// escape or a non-ASCII byte, which it leaves to encoding/json.
func scanString(b []byte, i int) (s string, next int, plain bool, err error) {
	if i >= len(b) || b[i] != '"' {
		return "", i, true, errors.New("not JSON: a key is not a string")
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true, nil
		case c == '\\' || c >= 0x80: // an escape, or UTF-8 that encoding/json checks
			return "", i, false, nil
		case c < 0x20:
			return "", i, true, errors.New("not JSON: a control character in a string")
		}
	}
	return "", i, true, errors.New("not JSON: unterminated string")
}

// skipValue returns the end of the JSON object or array at b[i]; whether
// what it skipped is valid JSON is for json.Valid (Decode) to say.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '{' && b[i] != '[' {
		return i, errors.New("/data: not an object")
	}
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case '"':
			j = endOfString(b, j) - 1
		}
	}
	return i, errors.New("not JSON: unexpected end")
}

// hasKey reports whether the JSON object b, already decoded and so valid,
// has the top-level key k (written without escapes, as every key of the
// contracts is).
func hasKey(b []byte, k string) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end := endOfString(b, i)
		if string(b[i+1:end-1]) == k {
			return true
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		switch {
		case i >= len(b):
			return false
		case b[i] == '{' || b[i] == '[':
			next, err := skipValue(b, i)
			if err != nil {
				return false
			}
			i = next
		case b[i] == '"':
			i = endOfString(b, i)
		default: // a number, true, false or null
			for i < len(b) && b[i] != ',' && b[i] != '}' {
				i++
			}
		}
	}
}

// endOfString returns the index after the JSON string starting at b[i].
func endOfString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}
