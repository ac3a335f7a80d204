package main

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"sync"
)

// user is a seeded user with the sessions the load knows of.
type user struct {
	mu      sync.Mutex
	email   string
	live    []cookie
	revoked []cookie
}

type cookie struct{ id, value string }

func readCookies(path string) ([]*user, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*user
	byEmail := map[string]*user{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue
		}
		u := byEmail[fs[0]]
		if u == nil {
			u = &user{email: fs[0]}
			byEmail[fs[0]] = u
			out = append(out, u)
		}
		u.live = append(u.live, cookie{fs[1], fs[2]})
	}
	if len(out) == 0 {
		return nil, errors.New("no cookies seeded")
	}
	return out, sc.Err()
}
