package rp

import (
	"bytes"
	"html/template"
	"net/http"
)

// pageProps is everything the one page template prints.
type pageProps struct {
	Title string
	// Signed in: who.
	SignedIn   bool
	Email      string
	Sub        string
	SID        string
	HasRefresh bool
	// Notice is a status line (why the browser is signed out, what a refresh did).
	Notice string
	// Problem is an error message; the page then offers to start again.
	Problem string
}

// pageTemplate is the whole UI: plain HTML forms, no JavaScript.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Example app</title>
<style>
body { font: 1rem/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; background: #fff; }
code { word-break: break-all; }
button, .button { font: inherit; display: inline-block; min-height: 44px; padding: .5rem 1rem; border: 1px solid #1a4fa0; border-radius: .25rem; background: #1a4fa0; color: #fff; text-decoration: none; cursor: pointer; }
form { display: inline-block; margin: .5rem .5rem 0 0; }
[role=status] { padding: .5rem 1rem; border-left: .25rem solid #1a4fa0; background: #eef3fb; }
[role=alert] { padding: .5rem 1rem; border-left: .25rem solid #a01a1a; background: #fbeeee; }
@media (prefers-color-scheme: dark) {
  body { color: #eee; background: #121212; }
  [role=status] { background: #1b2433; } [role=alert] { background: #331b1b; }
  button, .button { background: #2d63b8; border-color: #2d63b8; }
}
</style>
</head>
<body>
<main>
<h1>Example app</h1>
{{with .Problem}}<p role="alert">{{.}}</p>{{end}}
{{with .Notice}}<p role="status">{{.}}</p>{{end}}
{{if .SignedIn}}
<p>Signed in as <strong>{{.Email}}</strong> (sub <code>{{.Sub}}</code>, Doorman session sid <code>{{.SID}}</code>)</p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
{{if .HasRefresh}}<form method="post" action="/refresh"><button type="submit">Refresh tokens</button></form>{{end}}
{{else}}
<p>Not signed in</p>
<p><a class="button" href="/login">Sign in with Doorman</a></p>
{{end}}
<p><a href="/events">What this app received (JSON)</a></p>
</main>
</body>
</html>
`))

// render writes the page with status, rendered into a buffer first so a
// template error never leaves half a page.
func (r *RP) render(w http.ResponseWriter, status int, p pageProps) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		r.log.Error("rp: render page", "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages show who is signed in: no cache may keep them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem renders the page with an error message. msg is for people: it never
// carries an error's text, which is logged instead.
func (r *RP) problem(w http.ResponseWriter, req *http.Request, status int, msg string) {
	p := pageProps{Title: "Something went wrong", Problem: msg}
	if s, _, ok := r.currentSession(req); ok {
		p.SignedIn, p.Email, p.Sub, p.SID, p.HasRefresh = true, s.Email, s.Sub, s.SID, s.RefreshToken != ""
	}
	r.render(w, status, p)
}
