// Package redact removes credentials from URLs before they reach logs,
// errors, job state or metrics. It is the one place that decides what a
// secret in a URL looks like.
package redact

import (
	"regexp"
	"strings"
)

// Mask replaces a secret.
const Mask = "xxxxx"

// userinfo matches the user-info part of any scheme://user[:password]@
// in free text; the host follows the '@'.
var userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s"']*)@`)

// URL returns s with the credentials of every URL in it masked: the
// password of user:password@, or the whole user-info when it is a single
// token (nats://TOKEN@host). It works on a bare URL and on text that
// contains URLs (an error message), and leaves text without them alone.
func URL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfo.ReplaceAllStringFunc(s, func(m string) string {
		parts := userinfo.FindStringSubmatch(m)
		scheme, info := parts[1], parts[2]
		if user, _, ok := strings.Cut(info, ":"); ok {
			return scheme + user + ":" + Mask + "@"
		}
		return scheme + Mask + "@"
	})
}

// Error returns err's message with URL credentials masked ("" for nil).
func Error(err error) string {
	if err == nil {
		return ""
	}
	return URL(err.Error())
}

// Err wraps err so that its message has URL credentials masked while
// errors.Is and errors.As still see the original.
func Err(err error) error {
	if err == nil {
		return nil
	}
	msg := URL(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redacted{msg: msg, err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }

func (r *redacted) Unwrap() error { return r.err }
