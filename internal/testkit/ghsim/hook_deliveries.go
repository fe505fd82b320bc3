package ghsim

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Routes of the App webhook delivery endpoints (hook_deliveries.go).
const (
	RouteHookDeliveries Route = "hook_deliveries" // GET /app/hook/deliveries
	RouteRedeliver      Route = "redeliver"       // POST /app/hook/deliveries/{id}/attempts
)

const (
	docHookDeliveries = "https://docs.github.com/rest/apps/webhooks#list-deliveries-for-an-app-webhook"
	docRedeliver      = "https://docs.github.com/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook"
)

// HookDelivery is one delivery of the App's webhook, as GitHub lists it.
// Redeliveries are deliveries of their own, with the GUID (the
// X-GitHub-Delivery header) of the delivery they repeat.
type HookDelivery struct {
	ID          int64     `json:"id"`
	GUID        string    `json:"guid"`
	DeliveredAt time.Time `json:"delivered_at"`
	Redelivery  bool      `json:"redelivery"`
	Duration    float64   `json:"duration"`
	// Status is "OK" for a 2xx answer, else what went wrong ("Invalid
	// HTTP Response: 503", "failed to connect to host").
	Status         string `json:"status"`
	StatusCode     int    `json:"status_code"` // 0 when nothing answered
	Event          string `json:"event"`
	Action         string `json:"action"`
	InstallationID int64  `json:"installation_id"`
	RepositoryID   int64  `json:"repository_id"`
}

// hookLog holds the App's webhook deliveries; its zero value is empty.
type hookLog struct {
	mu         sync.Mutex
	deliveries []*HookDelivery // by increasing id
	nextID     int64
	redeliver  int // status code of simulated redeliveries (0: 200)
}

// hookStatus is the "status" GitHub reports for an answer with code.
func hookStatus(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "OK"
	case code == 0:
		return "failed to connect to host"
	default:
		return fmt.Sprintf("Invalid HTTP Response: %d", code)
	}
}

// AddHookDelivery records a delivery of the App's webhook and returns it.
// Zero fields get defaults: ID the next id (increasing, from 90000000001),
// GUID a random UUID, DeliveredAt the server clock's now, Event
// "workflow_run" with Action "completed" (an event given is taken as is,
// action included), Status derived from StatusCode ("OK"
// for 2xx; a StatusCode of 0 with an empty Status means no answer, "failed
// to connect to host").
func (s *Server) AddHookDelivery(d HookDelivery) HookDelivery {
	if d.GUID == "" {
		d.GUID = newGUID()
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = s.now().UTC().Truncate(time.Second)
	}
	if d.Event == "" {
		d.Event = "workflow_run"
		d.Action = cmp.Or(d.Action, "completed")
	}
	d.Status = cmp.Or(d.Status, hookStatus(d.StatusCode))
	if d.Duration == 0 {
		d.Duration = 0.05
	}
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	if d.ID == 0 {
		h.nextID = max(h.nextID, 90_000_000_000) + 1
		d.ID = h.nextID
	} else {
		h.nextID = max(h.nextID, d.ID)
	}
	h.deliveries = append(h.deliveries, &d)
	slices.SortFunc(h.deliveries, func(a, b *HookDelivery) int { return cmp.Compare(a.ID, b.ID) })
	return d
}

// HookDeliveries returns every delivery of the App's webhook, redeliveries
// included, newest (highest id) first, as the API lists them.
func (s *Server) HookDeliveries() []HookDelivery {
	h := &s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]HookDelivery, 0, len(h.deliveries))
	for _, d := range slices.Backward(h.deliveries) {
		out = append(out, *d)
	}
	return out
}

// SetRedeliveryStatus sets the status code that the hook answers to the
// redeliveries requested through the API from now on (default 200).
func (s *Server) SetRedeliveryStatus(code int) {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	s.hooks.redeliver = code
}

// newGUID returns a random version-4 UUID, like X-GitHub-Delivery.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// hookDeliveryRoutes registers, with the App JWT:
//
//	GET  /app/hook/deliveries                  per_page (30, at most 100), cursor; newest first
//	POST /app/hook/deliveries/{id}/attempts    202; records a redelivery with the same guid
func (s *Server) hookDeliveryRoutes(mux *http.ServeMux) {
	mux.Handle("GET /app/hook/deliveries", s.api(RouteHookDeliveries, true, s.handleHookDeliveries))
	mux.Handle("POST /app/hook/deliveries/{delivery_id}/attempts", s.api(RouteRedeliver, true, s.handleRedeliver))
}

// hookCursor renders the cursor of the page that starts at delivery id.
func hookCursor(id int64) string { return "v1_" + strconv.FormatInt(id, 10) }

// handleHookDeliveries lists one page of deliveries, newest first. The
// Link header's rel="next" carries a "cursor" that starts the next page,
// as on GitHub (go-github reads it into Response.Cursor).
func (s *Server) handleHookDeliveries(w http.ResponseWriter, r *http.Request, _ *principal, _ *Fault) {
	q := r.URL.Query()
	perPage := min(queryInt(q.Get("per_page"), 30), 100)
	start := int64(-1) // no cursor: from the newest
	if c := q.Get("cursor"); c != "" {
		id, err := strconv.ParseInt(strings.TrimPrefix(c, "v1_"), 10, 64)
		if err != nil || !strings.HasPrefix(c, "v1_") {
			writeError(w, http.StatusUnprocessableEntity, "Invalid cursor", docHookDeliveries)
			return
		}
		start = id
	}
	all := s.HookDeliveries()
	var page []HookDelivery
	next := int64(0)
	for _, d := range all {
		if start >= 0 && d.ID > start {
			continue
		}
		if len(page) == perPage {
			next = d.ID
			break
		}
		page = append(page, d)
	}
	if next != 0 {
		v := url.Values{"per_page": {strconv.Itoa(perPage)}, "cursor": {hookCursor(next)}}
		w.Header().Set("Link", fmt.Sprintf(`<%sapp/hook/deliveries?%s>; rel="next"`, s.apiURL, v.Encode()))
	}
	out := make([]map[string]any, 0, len(page))
	for _, d := range page {
		out = append(out, hookJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// hookJSON renders a delivery as GitHub does: null action, installation
// and repository when absent.
func hookJSON(d HookDelivery) map[string]any {
	nullable := func(v any, present bool) any {
		if !present {
			return nil
		}
		return v
	}
	return map[string]any{
		"id":              d.ID,
		"guid":            d.GUID,
		"delivered_at":    d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery":      d.Redelivery,
		"duration":        d.Duration,
		"status":          d.Status,
		"status_code":     d.StatusCode,
		"event":           d.Event,
		"action":          nullable(d.Action, d.Action != ""),
		"installation_id": nullable(d.InstallationID, d.InstallationID != 0),
		"repository_id":   nullable(d.RepositoryID, d.RepositoryID != 0),
		"throttled_at":    nil,
	}
}

// handleRedeliver repeats a delivery: it records a new delivery with the
// same guid, event and action, marked as a redelivery, answered with the
// status set by SetRedeliveryStatus, and answers 202 like GitHub.
func (s *Server) handleRedeliver(w http.ResponseWriter, r *http.Request, _ *principal, _ *Fault) {
	id, ok := pathID(r, "delivery_id")
	h := &s.hooks
	h.mu.Lock()
	var orig *HookDelivery
	for _, d := range h.deliveries {
		if ok && d.ID == id {
			orig = d
		}
	}
	code := cmp.Or(h.redeliver, http.StatusOK)
	h.mu.Unlock()
	if orig == nil {
		writeError(w, http.StatusNotFound, "Not Found", docRedeliver)
		return
	}
	re := *orig
	re.ID, re.Redelivery, re.DeliveredAt = 0, true, time.Time{}
	re.StatusCode, re.Status = code, ""
	s.AddHookDelivery(re)
	writeJSON(w, http.StatusAccepted, map[string]any{})
}
