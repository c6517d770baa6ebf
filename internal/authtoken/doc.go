// Package authtoken checks parley's --auth-token the way Rasa does
// (?token=) and as a bearer token, the scheme in any case, for every
// endpoint that takes it (POST /events, the conversation API).
package authtoken
