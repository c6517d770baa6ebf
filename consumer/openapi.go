package consumer

import (
	"cmp"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// OpenAPI returns the OpenAPI 3 document of the consumer API, for a
// server that merges it into its own.
func OpenAPI() map[string]any { return openAPIDoc(routes()) }

type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func arrayOf(s obj) obj { return obj{"type": "array", "items": s} }

// scalarConfig is a consumer setting: Mix sends strings, others numbers
// or booleans.
func scalarConfig(desc string, example any) obj {
	return obj{"description": desc, "example": example, "oneOf": []obj{{"type": "string"}, {"type": "number"}, {"type": "boolean"}}}
}

var schemas = obj{
	"Error": obj{"type": "object", "required": []string{"error_code", "message"}, "properties": obj{
		"error_code": obj{"type": "integer", "example": 40403, "description": "The HTTP status followed by two digits: 40101 unauthorised, 40301 forbidden, 40401 topic not found, 40402 partition not found, 40403 consumer instance not found, 40404 consumer instance expired, 40601 not acceptable, 40902 consumer instance exists, 40903 illegal state, 40904 SSE stream replaced by a newer one, 40905 offset out of range, 42201 invalid request, 42204 invalid consumer configuration, 42901 rate limited, 50002 source error, 50301 shutting down."},
		"message":    obj{"type": "string", "example": "Consumer instance not found."},
	}},
	"TopicPartitions": obj{"type": "object", "properties": obj{
		"topic":      obj{"type": "string", "example": "rasa_core_events"},
		"partitions": arrayOf(obj{"type": "integer", "format": "int32"}),
	}},
	"PartitionOffsets": obj{"type": "object", "properties": obj{
		"beginning_offset": obj{"type": "integer", "format": "int64", "description": "The first offset held."},
		"end_offset":       obj{"type": "integer", "format": "int64", "description": "The offset the next record will get."},
	}},
	"ConsumerConfig": obj{"type": "object", "additionalProperties": false, "properties": obj{
		"auto.offset.reset":           scalarConfig("Where to start in a partition without a committed offset, and where a position found out of range (a seek, a commit or a Last-Event-ID outside [beginning, end]) moves to: earliest, latest (default) or none (the read fails with 40905 until the client seeks). A reset is reported in the Parley-Offset-Reset header of the records response, or as an SSE comment.", "earliest"),
		"auto.commit.enable":          scalarConfig("Commit delivered offsets every few seconds, when partitions are revoked and when the consumer is deleted. Default false on the Mix paths (Mix's documented default), true on Confluent's (Kafka's).", "false"),
		"fetch.min.bytes":             scalarConfig("Wait for this many bytes of records (or the timeout) before answering; -1 answers as soon as there is one record.", "-1"),
		"consumer.request.timeout.ms": scalarConfig("How long a records request waits without ?timeout= (default 1000).", "1000"),
		"format":                      obj{"type": "string", "enum": []string{"json", "binary"}, "description": "json (default): value is the event JSON; binary: key and value are base64."},
	}},
	"ConfluentConsumerConfig": obj{"allOf": []obj{ref("ConsumerConfig"), {"type": "object", "properties": obj{
		"name": obj{"type": "string", "description": "The instance name (default: generated). Confluent's default format is binary."},
		"id":   obj{"type": "string", "description": "Confluent v1's name for name."},
	}}}},
	"CreatedConsumer": obj{"type": "object", "properties": obj{
		"instance_id": obj{"type": "string"},
		"base_uri":    obj{"type": "string", "example": "http://localhost:5005/consumers/analytics/instances/rest-consumer-1"},
	}},
	"Topics": obj{"type": "object", "properties": obj{
		"topics":        arrayOf(obj{"type": "string"}),
		"topic_pattern": obj{"type": "string", "description": "Instead of topics: a regular expression (RE2, matching whole names) over the source's topics the token may read, resolved when subscribing."},
	}},
	"TopicPartition": obj{"type": "object", "required": []string{"topic", "partition"}, "properties": obj{
		"topic":     obj{"type": "string"},
		"partition": partitionSchema,
	}},
	"TopicNames": arrayOf(obj{"type": "string"}),
	"PartitionInfo": obj{"type": "object", "properties": obj{
		"partition": obj{"type": "integer", "format": "int32"},
		"leader":    obj{"type": "integer", "description": "Always -1: parley does not expose brokers."},
		"replicas":  arrayOf(obj{"type": "object"}),
	}},
	"PartitionInfos": arrayOf(ref("PartitionInfo")),
	"Topic": obj{"type": "object", "properties": obj{
		"name":       obj{"type": "string"},
		"configs":    obj{"type": "object", "additionalProperties": obj{"type": "string"}},
		"partitions": arrayOf(ref("PartitionInfo")),
	}},
	"Partitions": obj{"type": "object", "properties": obj{"partitions": arrayOf(ref("TopicPartition"))}},
	"TopicPartitionOffset": obj{"type": "object", "required": []string{"topic", "partition", "offset"}, "properties": obj{
		"topic":     obj{"type": "string"},
		"partition": partitionSchema,
		"offset":    obj{"description": "An integer, or a string holding one.", "oneOf": []obj{{"type": "integer", "format": "int64"}, {"type": "string", "pattern": "^[0-9]+$"}}},
		"metadata":  obj{"type": "string"},
	}},
	"Offsets":   obj{"type": "object", "properties": obj{"offsets": arrayOf(ref("TopicPartitionOffset"))}},
	"EmptyList": obj{"type": "array", "maxItems": 0, "items": obj{}},
	"Record": obj{"type": "object", "properties": obj{
		"topic":     obj{"type": "string"},
		"key":       obj{"type": "string", "nullable": true, "description": "The sender_id (SQL source) or the Kafka key; base64 in binary format or when not UTF-8."},
		"value":     obj{"description": "The event JSON (Rasa's tracker event); base64 in binary format."},
		"partition": obj{"type": "integer", "format": "int32"},
		"offset":    obj{"type": "integer", "format": "int64"},
		"timestamp": obj{"type": "integer", "format": "int64", "nullable": true, "description": "Milliseconds since the epoch: the Kafka record's timestamp, or the event's timestamp for the SQL source."},
		"headers":   obj{"type": "object", "additionalProperties": obj{"type": "string"}},
	}},
	"Records":     arrayOf(ref("Record")),
	"EventStream": obj{"type": "string", "description": "Server-Sent Events: `id: <partition>:<offset>`, `event: record`, `data: <Record JSON>` (or, with ?data=value, the record's value alone); `event: error` with an Error before the server ends the stream; comments as heartbeats."},
	"TokenRequest": obj{"type": "object", "required": []string{"grant_type"}, "properties": obj{
		"grant_type":    obj{"type": "string", "enum": []string{"client_credentials"}},
		"client_id":     obj{"type": "string", "description": "Or in HTTP Basic auth."},
		"client_secret": obj{"type": "string", "description": "Or in HTTP Basic auth."},
		"scope":         obj{"type": "string", "description": "Space-separated topics; default: every topic the client may read."},
	}},
	"Token": obj{"type": "object", "properties": obj{
		"access_token": obj{"type": "string"},
		"token_type":   obj{"type": "string", "example": "bearer"},
		"expires_in":   obj{"type": "integer", "description": "Seconds."},
		"scope":        obj{"type": "string"},
	}},
	"TokenError": obj{"type": "object", "properties": obj{
		"error":             obj{"type": "string", "example": "invalid_client"},
		"error_description": obj{"type": "string"},
		"error_code":        obj{"type": "integer"},
		"message":           obj{"type": "string"},
	}},
	"OpenAPI": obj{"type": "object", "description": "An OpenAPI 3 document."},
}

// partitionSchema: Nuance's Mix client sends partitions as strings.
var partitionSchema = obj{"description": "A partition number, or a string holding one (as Nuance's Mix client sends).", "oneOf": []obj{{"type": "integer", "format": "int32"}, {"type": "string", "pattern": "^[0-9]+$"}}}

var parameters = obj{
	"consumer-group": obj{"name": "consumer-group", "in": "header", "required": true, "schema": obj{"type": "string"}, "description": "The consumer group."},
	"consumer-name":  obj{"name": "consumer-name", "in": "header", "required": true, "schema": obj{"type": "string"}, "description": "The consumer instance's name within its group."},
	"group":          obj{"name": "group", "in": "path", "required": true, "schema": obj{"type": "string"}},
	"name":           obj{"name": "name", "in": "path", "required": true, "schema": obj{"type": "string"}},
	"topic_name":     obj{"name": "topic", "in": "path", "required": true, "schema": obj{"type": "string"}},
	"partition":      obj{"name": "partition", "in": "path", "required": true, "schema": obj{"type": "integer", "format": "int32"}},
	"topic":          obj{"name": "topic", "in": "query", "schema": obj{"type": "string"}, "description": "The topic (default: the token's, else the server's default topic)."},
	"timeout":        obj{"name": "timeout", "in": "query", "schema": obj{"type": "integer"}, "description": "Milliseconds to wait for records; the response comes as soon as there are some."},
	"max_bytes":      obj{"name": "max_bytes", "in": "query", "schema": obj{"type": "integer"}, "description": "Cap on the key and value bytes returned (at least one record is)."},
	"data":           obj{"name": "data", "in": "query", "schema": obj{"type": "string", "enum": []string{"record", "value"}, "default": "record"}, "description": "What each record is sent as: the Record JSON, or its value alone (the event's JSON)."},
	"Last-Event-ID":  obj{"name": "Last-Event-ID", "in": "header", "schema": obj{"type": "string", "example": "0:41"}, "description": "Continue after this event (<partition>:<offset>)."},
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// openAPIDoc builds the document from the route table.
func openAPIDoc(rs []route) map[string]any {
	paths := obj{}
	for _, rt := range rs {
		item, _ := paths[rt.path].(obj)
		if item == nil {
			item = obj{}
			paths[rt.path] = item
		}
		var params []obj
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			name := m[1]
			if name == "topic" {
				name = "topic_name" // "topic" is the Mix paths' query parameter
			}
			params = append(params, obj{"$ref": "#/components/parameters/" + name})
		}
		if rt.key == keyHeaders {
			params = append(params, obj{"$ref": "#/components/parameters/consumer-group"}, obj{"$ref": "#/components/parameters/consumer-name"})
		}
		for _, q := range append(append([]string{}, rt.query...), rt.headers...) {
			params = append(params, obj{"$ref": "#/components/parameters/" + q})
		}
		op := obj{
			"operationId": rt.op,
			"summary":     rt.summary,
			"tags":        []string{rt.tag},
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if rt.body != "" {
			content := obj{"application/json": obj{"schema": ref(rt.body)}}
			if rt.op == "token" {
				content["application/x-www-form-urlencoded"] = obj{"schema": ref(rt.body)}
			}
			op["requestBody"] = obj{"required": rt.bodyRequired, "content": content}
		}
		responses := obj{}
		okType := cmp.Or(rt.okType, "application/json")
		ok := obj{"description": http.StatusText(rt.okStatus)}
		if rt.okSchema != "" {
			content := obj{okType: obj{"schema": ref(rt.okSchema)}}
			if rt.ndjson {
				content[ndjsonType] = obj{"schema": obj{"type": "string", "description": "With Accept: application/x-ndjson: the same records (or values), one JSON object per line."}}
			}
			ok["content"] = content
		}
		responses[strconv.Itoa(rt.okStatus)] = ok
		for _, code := range rt.errors {
			schema := "Error"
			if rt.op == "token" {
				schema = "TokenError"
			}
			responses[strconv.Itoa(code)] = obj{
				"description": errorDescription(code),
				"content":     obj{errorType(&rt): obj{"schema": ref(schema)}},
			}
		}
		op["responses"] = responses
		if rt.public {
			op["security"] = []obj{}
		}
		item[strings.ToLower(rt.method)] = op
	}
	return obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":   "parley consumer API",
			"version": "1",
			"description": "Conversation events over HTTP: Nuance Mix's Kafka Consumer API (consumer named by the consumer-group and consumer-name headers) " +
				"and Confluent REST Proxy v2's consumer paths, over Kafka topics or the SQL broker's events table. " +
				"Commit offsets are those of the last record processed; committed offsets read back are the next offset to read, as in Confluent's API. " +
				"Partitions (and offsets) in request bodies may be numbers or numeric strings. Every path also answers with a trailing slash. " +
				"Errors are {error_code, message}: application/json on the Mix paths, application/vnd.kafka.v2+json on Confluent's.",
		},
		"paths": paths,
		"components": obj{
			"schemas":    schemas,
			"parameters": parameters,
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A token from POST /oauth2/token; not needed when no clients are configured (loopback callers only)."},
			},
		},
		"security": []obj{{"bearer": []string{}}},
	}
}

func errorDescription(code int) string {
	switch code {
	case 400:
		return "Invalid token request"
	case 401:
		return "No, invalid or expired token (40101)"
	case 403:
		return "Topic outside the token's scope, another client's consumer group or instance, or a non-loopback caller of an open API (40301)"
	case 404:
		return "Topic (40401), partition (40402) or consumer instance (40403) not found, or the instance expired (40404)"
	case 406:
		return "Accept names no type the consumer's records come in (40601)"
	case 409:
		return "Consumer instance exists (40902), illegal state (40903), or offset out of range (40905): a commit past the end of a partition, or a read under auto.offset.reset=none of a position outside its partition; the message names the range"
	case 422:
		return "Invalid request (42201; e.g. a negative timeout or a max_bytes below 1, named in the message) or consumer configuration (42204)"
	case 429:
		return "Rate limited (42901); see Retry-After"
	}
	return http.StatusText(code)
}

// openAPI serves GET /openapi.json.
func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	doc, err := json.MarshalIndent(openAPIDoc(h.routes), "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(doc)
	return err
}
