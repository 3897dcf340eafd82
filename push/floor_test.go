package push_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkLoopbackFloor is the floor under BenchmarkPushLoad's fan-out on
// this machine: no JMAP, no broker, only N loopback TCP connections to a
// child process that reports each arrival as BenchmarkPushLoad's client
// does, and one write of an event-sized message to each per round, from
// GOMAXPROCS writers. What it measures is the kernel's and the client's
// share of a fan-out; what BenchmarkPushLoad measures above it is the
// server's.
//
//	PUSH_CONNS=10000 go test ./push -run '^$' -bench BenchmarkLoopbackFloor -benchtime 10x
func BenchmarkLoopbackFloor(b *testing.B) {
	n := 2000
	if s := os.Getenv("PUSH_CONNS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	child := exec.Command(os.Args[0], "-test.run=^TestLoopbackFloorClient$", "-test.timeout=0")
	child.Env = append(os.Environ(), "FLOOR_CLIENT="+ln.Addr().String()+" "+strconv.Itoa(n))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = child.Wait()
	}()
	conns := make([]net.Conn, 0, n)
	for len(conns) < n {
		c, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	arrivals := make(chan time.Time, 4096)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if ns, err := strconv.ParseInt(strings.TrimPrefix(sc.Text(), "ev "), 10, 64); err == nil {
				arrivals <- time.Unix(0, ns)
			}
		}
		close(arrivals)
	}()
	msg := []byte("event: state\nid: eyJhMSI6eyJOb3RlIjoiMTIzIn19\ndata: {\"@type\":\"StateChange\",\"changed\":{\"a1\":{\"Note\":\"123\"}}}\n\n")
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		var wg sync.WaitGroup
		w := runtime.GOMAXPROCS(0)
		for k := range w {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := k; i < n; i += w {
					_, _ = conns[i].Write(msg)
				}
			}()
		}
		for range n {
			at, ok := <-arrivals
			if !ok {
				b.Fatal("the client process ended")
			}
			lat = append(lat, at.Sub(start))
		}
		wg.Wait()
	}
	b.ReportMetric(pct(lat, 50), "fanout-p50-ms")
	b.ReportMetric(pct(lat, 99), "fanout-p99-ms")
}

// TestLoopbackFloorClient is the client process of BenchmarkLoopbackFloor:
// it does nothing unless started by it. It opens the connections and
// prints "ev UNIXNANO" for each message read, until its stdin closes.
func TestLoopbackFloorClient(t *testing.T) {
	spec := os.Getenv("FLOOR_CLIENT")
	if spec == "" {
		return
	}
	f := strings.Fields(spec)
	n, _ := strconv.Atoi(f[1])
	out := make(chan int64, 65536)
	for range n {
		c, err := net.Dial("tcp", f[0])
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				out <- time.Now().UnixNano()
			}
		}()
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	w := bufio.NewWriter(os.Stdout)
	for ns := range out {
		w.WriteString("ev " + strconv.FormatInt(ns, 10) + "\n")
		if len(out) == 0 {
			w.Flush()
		}
	}
}
