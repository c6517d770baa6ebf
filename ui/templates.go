package ui

import (
	"html/template"
	"strconv"
	"strings"
)

// parsePages parses each page with the layout: one template set per page,
// each defining "content" (and its fragments).
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"join": strings.Join,
		"offset": func(n int64) string {
			if n < 0 {
				return "—"
			}
			return strconv.FormatInt(n, 10)
		},
		"ago": ago,
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"conversations", "conversation", "live", "delivery", "deadletters", "consumers", "login", "message"} {
		t, err := template.Must(base.Clone()).ParseFS(files, "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}
