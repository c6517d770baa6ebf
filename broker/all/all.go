// Package all registers every broker that ships with parley. Import it for
// its side effect, as cmd/parley does:
//
//	import _ "github.com/parleyhq/parley/broker/all"
package all

import (
	_ "github.com/parleyhq/parley/broker/file"     // type file
	_ "github.com/parleyhq/parley/broker/kafka"    // type kafka
	_ "github.com/parleyhq/parley/broker/rabbitmq" // types pika, rabbitmq
	_ "github.com/parleyhq/parley/broker/sql"      // type sql
)
