package consumer

import (
	"mime"
	"net/http"
	"strings"
)

// checkAccept answers 406 (40601) when the client's Accept lists no type
// the records route answers with: a Confluent client asking for binary
// records from a json consumer (or the reverse) would otherwise parse
// the wrong shape. A missing Accept, wildcards and the generic JSON types
// are always fine.
func checkAccept(r *http.Request, binary, v1 bool) error {
	vals := r.Header.Values("Accept")
	if len(vals) == 0 {
		return nil
	}
	format := "json"
	if binary {
		format = "binary"
	}
	ok := map[string]bool{
		"*/*": true, "application/*": true, "application/json": true, ndjsonType: true,
		"application/vnd.kafka+json":                   true,
		"application/vnd.kafka.v2+json":                true,
		"application/vnd.kafka." + format + ".v2+json": true,
	}
	if v1 {
		ok["application/vnd.kafka.v1+json"] = true
		ok["application/vnd.kafka."+format+".v1+json"] = true
	}
	var listed []string
	for _, v := range vals {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if params["q"] == "0" {
				continue
			}
			if ok[mt] {
				return nil
			}
			listed = append(listed, mt)
		}
	}
	if len(listed) == 0 {
		return nil // nothing parseable: as if no Accept
	}
	return apiErr(http.StatusNotAcceptable, CodeNotAcceptable, "Accept %q names no type this consumer's records come in: it was created with format %q, whose records are application/vnd.kafka.%s.v2+json (or application/json, application/x-ndjson).", strings.Join(listed, ", "), format, format)
}
