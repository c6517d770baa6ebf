package consumer

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/consumer/auth"
)

// tokenRequest is the client credentials grant, as a form (RFC 6749) or
// as JSON.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Scope        string `json:"scope"`
}

// token serves POST /oauth2/token. Client credentials come in the body
// (client_secret_post) or in HTTP Basic auth (client_secret_basic, what
// Mix's examples use). Errors carry both OAuth2's fields and the API's.
func (h *Handler) token(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	var req tokenRequest
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		if _, err := readBody(r, &req); err != nil {
			return oauthError(w, http.StatusBadRequest, "invalid_request", err.(*Error).Message)
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			return oauthError(w, http.StatusBadRequest, "invalid_request", "The body must be a form (application/x-www-form-urlencoded) or JSON: "+err.Error())
		}
		req = tokenRequest{
			GrantType:    r.PostForm.Get("grant_type"),
			ClientID:     r.PostForm.Get("client_id"),
			ClientSecret: r.PostForm.Get("client_secret"),
			Scope:        r.PostForm.Get("scope"),
		}
	}
	if id, secret, ok := r.BasicAuth(); ok {
		// RFC 6749 2.3.1: both are form-encoded inside Basic.
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
		req.ClientID, req.ClientSecret = id, secret
	}
	if req.GrantType != "client_credentials" {
		return oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials.")
	}
	if !h.auth.Enabled() {
		return oauthError(w, http.StatusBadRequest, "invalid_client", "No clients are configured (consumer_api.clients): the API is open to loopback callers and needs no token.")
	}
	if req.ClientID == "" || req.ClientSecret == "" {
		return oauthError(w, http.StatusUnauthorized, "invalid_client", "client_id and client_secret are required (in the body or as HTTP Basic auth).")
	}
	addr := remoteIP(r)
	if err := h.authThrottled(addr); err != nil {
		return err
	}
	tok, err := h.auth.Issue(req.ClientID, req.ClientSecret, req.Scope)
	switch {
	case errors.Is(err, auth.ErrInvalidClient):
		h.failed.allow(addr, time.Now())
		w.Header().Set("WWW-Authenticate", `Basic realm="parley"`)
		return oauthError(w, http.StatusUnauthorized, "invalid_client", "Unknown client or wrong secret.")
	case errors.Is(err, auth.ErrInvalidScope):
		return oauthError(w, http.StatusBadRequest, "invalid_scope", strings.TrimPrefix(err.Error(), "invalid_scope: ")+".")
	case err != nil:
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	return writeJSON(w, http.StatusOK, "application/json", struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
	}{tok.AccessToken, "bearer", int64(tok.ExpiresIn.Seconds()), tok.Claims.Scope})
}

// oauthError writes an RFC 6749 error, with the API's error_code and
// message beside OAuth2's error and error_description.
func oauthError(w http.ResponseWriter, status int, code, desc string) error {
	apiCode := CodeInvalidRequest
	if status == http.StatusUnauthorized {
		apiCode = CodeUnauthorized
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, status, "application/json", struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Code        int    `json:"error_code"`
		Message     string `json:"message"`
	}{code, desc, apiCode, desc})
}
