// Command loadgen is the benchmarks' HTTP load generator: closed-loop clients that
// send GET requests for a given time and report every latency as JSON on stdout.
//
// Written in Go so that the client costs a small fraction of the server's CPU per
// request (a Python client costs about a millisecond a request, which on a
// two-core machine takes a visible share from the server it measures).
//
//	loadgen -base http://127.0.0.1:8770 -seconds 20 -clients 4 -seed 7 <plan.json
//
// plan.json: {"paths": ["/api/v1/search?q=...", ...], "tokens": ["...", ...]}.
// Each client picks a path and a token at random (seeded) for every request.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"sync"
	"time"
)

type plan struct {
	Paths  []string `json:"paths"`
	Tokens []string `json:"tokens"`
}

type result struct {
	LatenciesMs []float64 `json:"latencies_ms"`
	Elapsed     float64   `json:"elapsed"`
	Errors      int       `json:"errors"`
	FirstError  string    `json:"first_error"`
}

func main() {
	base := flag.String("base", "", "server base URL")
	seconds := flag.Float64("seconds", 10, "how long to load")
	clients := flag.Int("clients", 4, "closed-loop clients")
	seed := flag.Int64("seed", 7, "random seed")
	flag.Parse()
	var p plan
	if err := json.NewDecoder(os.Stdin).Decode(&p); err != nil || len(p.Paths) == 0 || len(p.Tokens) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: stdin must hold a plan with paths and tokens:", err)
		os.Exit(2)
	}
	transport := &http.Transport{MaxIdleConnsPerHost: *clients, DisableCompression: true}
	httpClient := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	var mu sync.Mutex
	var res result
	res.LatenciesMs = make([]float64, 0, 1<<16)
	stopAt := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	began := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(*seed + int64(i)))
			local := make([]float64, 0, 1<<14)
			errs, first := 0, ""
			for time.Now().Before(stopAt) {
				req, _ := http.NewRequest("GET", *base+p.Paths[rng.Intn(len(p.Paths))], nil)
				req.Header.Set("Authorization", "Bearer "+p.Tokens[rng.Intn(len(p.Tokens))])
				start := time.Now()
				resp, err := httpClient.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				local = append(local, float64(time.Since(start).Microseconds())/1000)
				if err != nil {
					errs++
					if first == "" {
						first = err.Error()
					}
				}
			}
			mu.Lock()
			res.LatenciesMs = append(res.LatenciesMs, local...)
			res.Errors += errs
			if res.FirstError == "" {
				res.FirstError = first
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	res.Elapsed = time.Since(began).Seconds()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
}
