package tracker

import (
	"net/http"
	"strconv"

	"github.com/parleyhq/parley/event"
)

// docsURL is Rasa's DOCS_BASE_URL; error bodies link to Rasa's pages as
// Rasa's do.
const docsURL = "https://rasa.com/docs/rasa"

// apiError is Rasa's ErrorResponse:
//
//	{"version": ..., "status": "failure", "message": ..., "reason": ...,
//	 "details": {...}, "help": url or null, "code": status}
type apiError struct {
	status  int
	reason  string
	message string
	details event.Value // an object; {} when there are none
	help    string
	// retryAfter, if set, is sent as the Retry-After header (seconds).
	retryAfter int
}

func (e *apiError) value(version string) event.Value {
	details := e.details
	if details.Kind() != event.Object {
		details = event.ObjectValue()
	}
	help := event.NullValue()
	if e.help != "" {
		help = event.StringValue(e.help)
	}
	return event.ObjectValue(
		event.Member{Key: "version", Value: event.StringValue(version)},
		event.Member{Key: "status", Value: event.StringValue("failure")},
		event.Member{Key: "message", Value: event.StringValue(e.message)},
		event.Member{Key: "reason", Value: event.StringValue(e.reason)},
		event.Member{Key: "details", Value: details},
		event.Member{Key: "help", Value: help},
		event.Member{Key: "code", Value: event.IntValue(int64(e.status))},
	)
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	level := h.log.Debug
	if e.status >= 500 {
		level = h.log.Error // Rasa logs every ErrorResponse at error level; parley only its own failures
	}
	level("conversation API error", "method", r.Method, "path", r.URL.Path, "status", e.status, "reason", e.reason, "message", e.message)
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	writeJSON(w, e.status, e.value(h.version).AppendJSON(nil, event.FormatUJSON))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing to do
}

func errBadRequest(message string, details event.Value, help string) *apiError {
	return &apiError{status: http.StatusBadRequest, reason: "BadRequest", message: message, details: details, help: help}
}

var (
	errNotAuthenticated = &apiError{
		status: http.StatusUnauthorized, reason: "NotAuthenticated", message: "User is not authenticated.",
		help: docsURL + "/user-guide/configuring-http-api/#security-considerations",
	}
	errInvalidVerbosity = errBadRequest(
		"Invalid parameter value for 'include_events'. Should be one of NONE, APPLIED, AFTER_RESTART, ALL",
		event.ObjectValue(
			event.Member{Key: "parameter", Value: event.StringValue("include_events")},
			event.Member{Key: "in", Value: event.StringValue("query")},
		), "")
	errNoEvents = errBadRequest(
		"Couldn't extract a proper event from the request body.",
		event.ObjectValue(
			event.Member{Key: "parameter", Value: event.StringValue("")},
			event.Member{Key: "in", Value: event.StringValue("body")},
		), "")
)

func errNotFound(path string) *apiError {
	return &apiError{status: http.StatusNotFound, reason: "NotFound", message: "Requested URL " + path + " not found"}
}

func errMethod(method string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, reason: "MethodNotAllowed", message: "Method " + method + " not allowed for URL"}
}

func errTooLarge(limit int64) *apiError {
	return &apiError{
		status: http.StatusRequestEntityTooLarge, reason: "PayloadTooLarge",
		message: "Request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes.",
	}
}

func errConversation(err error) *apiError {
	return &apiError{status: http.StatusInternalServerError, reason: "ConversationError", message: "An unexpected error occurred. Error: " + err.Error()}
}

// errEvents reports invalid events with Rasa's message, each problem in
// details.errors as {"index", "field", "message"}.
func errEvents(errs []EventError) *apiError {
	msg := "Failed to validate the events format. For more information about the format visit the docs. Error: "
	items := make([]event.Value, len(errs))
	for i, e := range errs {
		if i > 0 {
			msg += "; "
		}
		msg += e.String()
		items[i] = event.ObjectValue(
			event.Member{Key: "index", Value: event.IntValue(int64(e.Index))},
			event.Member{Key: "field", Value: event.StringValue(e.Field)},
			event.Member{Key: "message", Value: event.StringValue(e.Msg)},
		)
	}
	return errBadRequest(msg, event.ObjectValue(event.Member{Key: "errors", Value: event.ArrayValue(items...)}), docsURL+"/pages/http-api")
}
