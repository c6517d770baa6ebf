package sql

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/broker/brokertest"
)

func TestParsePositionsTable(t *testing.T) {
	c, err := ParseConfig(brokertest.Section(t, "type: sql\ndb: x.db"))
	if err != nil || c.PositionsTable != DefaultPositionsTable {
		t.Fatalf("default positions_table = %q, %v; want %q", c.PositionsTable, err, DefaultPositionsTable)
	}
	c, err = ParseConfig(brokertest.Section(t, "type: sql\npositions_table: my_positions"))
	if err != nil || c.PositionsTable != "my_positions" {
		t.Fatalf("positions_table = %q, %v", c.PositionsTable, err)
	}
	for body, want := range map[string]string{
		"type: sql\npositions_table: events":          `endpoints.yml:3: event_broker.positions_table: must differ from table ("events")`,
		"type: sql\npositions_table: 'x; drop table'": `endpoints.yml:3: event_broker.positions_table: "x; drop table" is not a plain SQL table name`,
	} {
		_, err := ParseConfig(brokertest.Section(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}
