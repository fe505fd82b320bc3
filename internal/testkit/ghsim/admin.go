package ghsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// AdminHandler returns the control API of the simulator, for tests that
// run it as a separate process (cmd/ghsim -admin serves it under /_ghsim/
// on the API host). It takes no authentication. Routes:
//
//	GET    /state                      State (repositories, runs, artifacts with ids)
//	GET    /stats                      Stats
//	DELETE /stats                      ResetStats
//	POST   /faults                     Inject: {"route":"blob","count":1,"fault":{"kind":"reset","bytes":1048576}}
//	DELETE /faults                     ClearFaults
//	POST   /artifacts                  AddArtifact: {"owner":"o","repo":"r","run_id":1,"artifact":{ArtifactSpec}}
//	POST   /artifacts/{id}/expire      Expire
//	POST   /installations/{id}/token   InstallationToken: {"token":"ghs_...","expires_at":"..."}
//	POST   /ratelimit                  {"installation_id":7,"remaining":0,"reset":"2026-01-01T00:00:00Z"} (or "token")
//	POST   /attestations               AddAttestation: {"owner":"o","repo":"r","digest":"sha256:...","bundle":{...},"predicate_type":"..."}
//	PUT    /attestations/inline        SetInlineAttestationBundles: {"on":true}
//	GET    /payload?owner=&repo=&run_id=&installation_id=[&attempt=]   RunPayload (AttemptPayload)
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) }
	bad := func(w http.ResponseWriter, err error) {
		writeError(w, http.StatusBadRequest, err.Error(), "")
	}
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) { ok(w, s.State()) })
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { ok(w, s.Stats()) })
	mux.HandleFunc("DELETE /stats", func(w http.ResponseWriter, r *http.Request) {
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var f ScenarioFault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			bad(w, err)
			return
		}
		if err := f.Fault.check(f.Route); err != nil {
			bad(w, err)
			return
		}
		s.Inject(f.Route, f.Count, f.Fault)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /artifacts", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Owner    string       `json:"owner"`
			Repo     string       `json:"repo"`
			RunID    int64        `json:"run_id"`
			Artifact ArtifactSpec `json:"artifact"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			bad(w, err)
			return
		}
		run, found := s.Run(req.RunID)
		if repo, okRepo := s.Repo(req.Owner, req.Repo); !found || !okRepo || run.RepoID != repo.ID {
			writeError(w, http.StatusNotFound, "unknown repository or run", "")
			return
		}
		writeJSON(w, http.StatusCreated, s.AddArtifact(req.Owner, req.Repo, req.RunID, req.Artifact))
	})
	mux.HandleFunc("POST /artifacts/{id}/expire", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if !s.Expire(id) {
			writeError(w, http.StatusNotFound, "unknown artifact", "")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /installations/{id}/token", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		tok, exp, err := s.InstallationToken(id)
		if err != nil {
			writeError(w, http.StatusNotFound, err.Error(), "")
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.Format(time.RFC3339)})
	})
	mux.HandleFunc("POST /ratelimit", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Token          string    `json:"token"`
			InstallationID int64     `json:"installation_id"`
			Remaining      int       `json:"remaining"`
			Reset          time.Time `json:"reset"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			bad(w, err)
			return
		}
		if req.Token != "" {
			if !s.SetRateLimit(req.Token, req.Remaining, req.Reset) {
				writeError(w, http.StatusNotFound, "unknown token", "")
				return
			}
		} else {
			s.SetInstallationRateLimit(req.InstallationID, req.Remaining, req.Reset)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /attestations", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Owner         string          `json:"owner"`
			Repo          string          `json:"repo"`
			Digest        string          `json:"digest"`
			Bundle        json.RawMessage `json:"bundle"`
			PredicateType string          `json:"predicate_type"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			bad(w, err)
			return
		}
		a, err := s.AddAttestation(req.Owner, req.Repo, req.Digest, req.Bundle, req.PredicateType)
		if err != nil {
			bad(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, a)
	})
	mux.HandleFunc("PUT /attestations/inline", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			On bool `json:"on"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			bad(w, err)
			return
		}
		s.SetInlineAttestationBundles(req.On)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /payload", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		runID, _ := strconv.ParseInt(q.Get("run_id"), 10, 64)
		inst, _ := strconv.ParseInt(q.Get("installation_id"), 10, 64)
		attempt, _ := strconv.Atoi(q.Get("attempt"))
		b, err := s.AttemptPayload(q.Get("owner"), q.Get("repo"), runID, attempt, inst)
		if err != nil {
			writeError(w, http.StatusNotFound, err.Error(), "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	return mux
}
