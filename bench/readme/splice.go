package main

import (
	"errors"
	"strings"
)

const (
	begin = "<!-- bench:begin -->"
	end   = "<!-- bench:end -->"
)

// splice returns doc with the text between the markers replaced by body.
func splice(doc, body string) (string, error) {
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", errors.New("markers " + begin + " … " + end + " not found in order")
	}
	return doc[:i+len(begin)] + "\n" + strings.TrimSpace(body) + "\n" + doc[j:], nil
}
