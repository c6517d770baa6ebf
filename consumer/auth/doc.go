// Package auth secures the REST consumer API as Mix secures its Kafka
// consumer API: clients exchange their credentials at POST /oauth2/token
// (OAuth2 client credentials grant) for a short-lived bearer token whose
// claims name the topics the client may read.
//
// Tokens are HS256 JSON Web Tokens signed with consumer_api.signing_key.
// Client secrets are kept in endpoints.yml only as PBKDF2-HMAC-SHA256
// hashes, made with HashSecret (`parley consume hash-secret`):
//
//	consumer_api:
//	  clients:
//	    - client_id: analytics
//	      client_secret_hash: pbkdf2-sha256$600000$<salt>$<hash>
//	      topics: [rasa_core_events]
package auth
