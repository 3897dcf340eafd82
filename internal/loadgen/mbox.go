package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// MboxReader reads messages from an mbox file (the mboxo and mboxrd
// variants): a message starts at a "From " line at the start of the file
// or after a blank line; a line of ">From " (any number of '>') loses one
// '>'. Line ends become CRLF.
type MboxReader struct {
	r       *bufio.Reader
	pending []byte // the "From " line that starts the next message
	started bool
	done    bool
}

// NewMboxReader returns a reader of the messages in r.
func NewMboxReader(r io.Reader) *MboxReader {
	return &MboxReader{r: bufio.NewReaderSize(r, 64*1024)}
}

func isFromLine(line []byte) bool { return bytes.HasPrefix(line, []byte("From ")) }

// Next returns the next message without its "From " separator line.
func (m *MboxReader) Next() ([]byte, error) {
	if m.done {
		return nil, io.EOF
	}
	var msg bytes.Buffer
	prevBlank := true
	for {
		line, err := m.r.ReadBytes('\n')
		if len(line) > 0 {
			body := bytes.TrimRight(line, "\r\n")
			switch {
			case !m.started:
				if isFromLine(body) {
					m.started = true
					break
				}
				if len(bytes.TrimSpace(body)) == 0 {
					break
				}
				return nil, fmt.Errorf("mbox: does not start with a From line")
			case isFromLine(body) && prevBlank:
				if msg.Len() > 0 {
					return trimSeparator(msg.Bytes()), nil
				}
			default:
				if q := bytes.TrimLeft(body, ">"); len(q) < len(body) && isFromLine(q) {
					body = body[1:]
				}
				msg.Write(body)
				msg.WriteString("\r\n")
			}
			prevBlank = len(body) == 0
		}
		if err == io.EOF {
			m.done = true
			if msg.Len() == 0 {
				return nil, io.EOF
			}
			return trimSeparator(msg.Bytes()), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// trimSeparator drops the blank line that separates a message from the
// next "From " line.
func trimSeparator(b []byte) []byte {
	out := bytes.TrimSuffix(b, []byte("\r\n\r\n"))
	if len(out) < len(b) {
		out = append(out, '\r', '\n')
	}
	return bytes.Clone(out)
}

// MaildirReader reads the messages of a maildir and its Maildir++
// subfolders: every file in a cur or new directory, in path order.
type MaildirReader struct {
	files []string
	i     int
}

// NewMaildirReader lists the messages under dir.
func NewMaildirReader(dir string) (*MaildirReader, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			parent := filepath.Base(filepath.Dir(p))
			if (parent == "cur" || parent == "new") && !strings.HasPrefix(d.Name(), ".") {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	return &MaildirReader{files: files}, nil
}

// Next returns the next message file's content with CRLF line ends.
func (m *MaildirReader) Next() ([]byte, error) {
	if m.i >= len(m.files) {
		return nil, io.EOF
	}
	b, err := os.ReadFile(m.files[m.i])
	m.i++
	if err != nil {
		return nil, err
	}
	return toCRLF(b), nil
}

// toCRLF turns bare LF line ends into CRLF.
func toCRLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\n")) || bytes.Count(b, []byte("\r\n")) == bytes.Count(b, []byte("\n")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// limitSource stops a source after n messages (n < 0: no limit).
type limitSource struct {
	src Source
	n   int
}

func (l *limitSource) Next() ([]byte, error) {
	if l.n == 0 {
		return nil, io.EOF
	}
	l.n--
	return l.src.Next()
}

// OpenCorpus opens an mbox file or a maildir directory, limited to max
// messages (max < 0: all).
func OpenCorpus(path string, max int) (Source, io.Closer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		md, err := NewMaildirReader(path)
		if err != nil {
			return nil, nil, err
		}
		return &limitSource{src: md, n: max}, io.NopCloser(nil), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return &limitSource{src: NewMboxReader(f), n: max}, f, nil
}
