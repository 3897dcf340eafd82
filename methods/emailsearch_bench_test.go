package methods

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/internal/mime"
)

// BenchmarkBodySearchText collects the body tokens of a 27 KB plain-text
// message of English-like prose, as Email/import does for each message.
func BenchmarkBodySearchText(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	vocab := strings.Fields(`the of and to in a is that for it as was with be by on not he I this are or his from at which
		but have an they you were her she there been one all we their has would when if so no will more about out up
		them some could what into than its only other time new report budget meeting quarterly numbers travel review`)
	var sb strings.Builder
	sb.WriteString("From: Sender <s@example.test>\r\nTo: alice@example.test\r\nSubject: Report\r\n\r\n")
	for sb.Len() < 27<<10 {
		w := vocab[rng.IntN(len(vocab))]
		if rng.IntN(9) == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		sb.WriteString(w)
		if rng.IntN(14) == 0 {
			sb.WriteString(".\r\n")
		} else {
			sb.WriteByte(' ')
		}
	}
	raw := []byte(sb.String())
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := mime.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if st := bodySearchText(m); len(st.body) == 0 {
			b.Fatal("no tokens")
		}
	}
}
