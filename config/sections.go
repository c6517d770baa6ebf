package config

import (
	"fmt"
	"slices"
)

// knownSections are the top-level sections of endpoints.yml: parley's,
// and Rasa's that parley does not use but accepts, since one file serves
// both.
var knownSections = []string{
	"event_broker", "tracker_store", "spool", "consumer_api", // parley's
	"action_endpoint", "models", "nlg", "nlu", "lock_store", "vector_store", // Rasa's
}

// SectionWarnings returns a warning for every top-level key that is not a
// known section, with its line and the closest known name: a misspelt
// event_broker would otherwise leave parley on its built-in default
// without a word.
func (e *Endpoints) SectionWarnings() []string {
	var out []string
	for _, k := range e.root.Keys() {
		if slices.Contains(knownSections, k) {
			continue
		}
		msg := "unknown section, ignored"
		if near := closest(k, knownSections); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		line := 0
		if kn := e.root.key[k]; kn != nil {
			line = kn.Line
		}
		out = append(out, (&Error{File: e.File, Line: line, Key: k, Msg: msg}).Error())
	}
	return out
}

// closest returns the candidate nearest to s when it is near enough to be
// a typo (an edit distance of at most a third of its length), else "".
func closest(s string, candidates []string) string {
	best, bestD := "", len(s)/3+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
