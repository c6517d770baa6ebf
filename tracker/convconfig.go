package tracker

import (
	"fmt"
	"path/filepath"

	"github.com/parleyhq/parley/config"
)

// ConversationsConfig is the conversations section of endpoints.yml (a
// parley section; `parley serve` flags of the same names override it):
//
//	conversations:
//	  domain: domain.yml     # Rasa domain: slots and session_config
//	  model_id: 7f3c...      # added to appended events' metadata
//	  assistant_id: my_bot   # likewise (config.yml assistant_id)
//	  rasa_append: false     # true: store repeated POSTs twice, as Rasa
type ConversationsConfig struct {
	// Domain is the domain file (relative paths are relative to the
	// endpoints file); "" for none.
	Domain string
	// ModelID and AssistantID: see HandlerOptions.
	ModelID, AssistantID string
	// RasaAppend: see HandlerOptions (default false: de-duplicate).
	RasaAppend bool
}

// ParseConversationsConfig reads the conversations section (nil: none).
func ParseConversationsConfig(sec *config.Section) (ConversationsConfig, error) {
	var c ConversationsConfig
	if sec == nil {
		return c, nil
	}
	c.Domain = sec.String("domain", "")
	c.ModelID = sec.String("model_id", "")
	c.AssistantID = sec.String("assistant_id", "")
	c.RasaAppend = sec.Bool("rasa_append", false)
	sec.WarnUnused("conversations")
	if err := sec.Err(); err != nil {
		return c, err
	}
	if c.Domain != "" && !filepath.IsAbs(c.Domain) && sec.File() != "" && sec.File() != config.EmbeddedName {
		c.Domain = filepath.Join(filepath.Dir(sec.File()), c.Domain)
	}
	return c, nil
}

// LoadDomain reads the configured domain, or returns nil without one.
func (c ConversationsConfig) LoadDomain() (*Domain, error) {
	if c.Domain == "" {
		return nil, nil
	}
	d, err := LoadDomain(c.Domain)
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	return d, nil
}
