package methods_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
)

// localCopies sends one message from a new user to b@ and c@ and returns
// the server, the two recipients and the email each got.
func localCopies(t *testing.T) (srv *jmaptest.Server, b, c *jmaptest.Client, eb, ec map[string]any) {
	t.Helper()
	srv = jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	b = srv.NewUser(t, "b@example.test")
	c = srv.NewUser(t, "c@example.test")
	eid := draft(t, a, map[string]any{"to": to("b@example.test", "c@example.test"), "subject": "Quarterly",
		"bodyValues": map[string]any{"b": map[string]any{"value": strings.Repeat("The copies share this body. ", 200)}}})
	submitted(t, submit(t, a, map[string]any{"identityId": ownIdentity(t, a), "emailId": eid}, nil))
	props := []string{"blobId", "size", "subject", "header:Delivered-To:asText"}
	for _, rc := range []*jmaptest.Client{b, c} {
		got := inbox(t, rc, props...)
		if len(got) != 1 {
			t.Fatalf("%s inbox: %v", rc.Email, got)
		}
		if rc == b {
			eb = got[0]
		} else {
			ec = got[0]
		}
	}
	return srv, b, c, eb, ec
}

// TestLocalCopy_WholeMessageEverywhere checks that each recipient's copy of
// a locally delivered message is, for every way of reading it, the whole
// message with that recipient's own trace fields in front: download (RFC
// 8620 §6.2), Blob/get data, digest and ranges (RFC 9404 §4.2), Email/get
// bodyValues and raw headers, Email/parse (RFC 8621 §4.9), a text search,
// and the size and blobId reported for it.
func TestLocalCopy_WholeMessageEverywhere(t *testing.T) {
	t.Parallel()
	_, b, c, eb, ec := localCopies(t)
	if eb["blobId"] == ec["blobId"] {
		t.Fatalf("both copies have blob %v; each has its own trace fields", eb["blobId"])
	}
	for _, x := range []struct {
		rc *jmaptest.Client
		e  map[string]any
	}{{b, eb}, {c, ec}} {
		blob := str(x.e["blobId"])
		raw := downloadBlob(t, x.rc, blob)
		if !strings.HasPrefix(string(raw), "Return-Path: <a@example.test>\r\nDelivered-To: "+x.rc.Email+"\r\nReceived: ") {
			t.Errorf("%s: download starts %q", x.rc.Email, raw[:min(len(raw), 120)])
		}
		if !bytes.Contains(raw, []byte("Subject: Quarterly\r\n")) || !bytes.Contains(raw, []byte("The copies share this body. The copies")) {
			t.Errorf("%s: the download lacks the message after the trace fields", x.rc.Email)
		}
		if got := string(jmaptest.BlobID(raw)); got != blob {
			t.Errorf("%s: blobId %s, want the digest of the content, %s", x.rc.Email, blob, got)
		}
		if x.e["size"] != float64(len(raw)) {
			t.Errorf("%s: size %v, want %d", x.rc.Email, x.e["size"], len(raw))
		}
		if x.e["header:Delivered-To:asText"] != x.rc.Email {
			t.Errorf("%s: Delivered-To %v", x.rc.Email, x.e["header:Delivered-To:asText"])
		}

		sum := sha256.Sum256(raw)
		got := x.rc.One(t, "Blob/get", map[string]any{"accountId": x.rc.Account, "ids": []string{blob},
			"properties": []string{"data:asBase64", "size", "digest:sha-256"}})
		list, _ := got["list"].([]any)
		if len(list) != 1 {
			t.Fatalf("%s: Blob/get %v", x.rc.Email, got)
		}
		g := list[0].(map[string]any)
		if g["size"] != float64(len(raw)) || g["digest:sha-256"] != base64.StdEncoding.EncodeToString(sum[:]) ||
			g["data:asBase64"] != base64.StdEncoding.EncodeToString(raw) {
			t.Errorf("%s: Blob/get size %v digest %v, want %d and the digest of the download", x.rc.Email, g["size"], g["digest:sha-256"], len(raw))
		}
		// A range across the end of the trace fields, and one inside the
		// message after them.
		seam := bytes.Index(raw, []byte("\r\n\r\n"))
		hdrEnd := bytes.Index(raw, []byte("From: "))
		for _, r := range [][2]int{{hdrEnd - 10, 30}, {seam, 40}, {5, 20}} {
			got := x.rc.One(t, "Blob/get", map[string]any{"accountId": x.rc.Account, "ids": []string{blob},
				"properties": []string{"data:asBase64", "digest:sha-256"}, "offset": r[0], "length": r[1]})
			g := got["list"].([]any)[0].(map[string]any)
			part := raw[r[0] : r[0]+r[1]]
			ps := sha256.Sum256(part)
			if g["data:asBase64"] != base64.StdEncoding.EncodeToString(part) || g["digest:sha-256"] != base64.StdEncoding.EncodeToString(ps[:]) {
				t.Errorf("%s: Blob/get range %v = %v, want %q", x.rc.Email, r, g, part)
			}
		}

		full := getEmail(t, x.rc, str(x.e["id"]), map[string]any{"properties": []string{"bodyValues", "textBody", "header:Received"},
			"fetchAllBodyValues": true})
		var text string
		for _, v := range full["bodyValues"].(map[string]any) {
			text += str(v.(map[string]any)["value"])
		}
		if !strings.HasPrefix(text, "The copies share this body. ") || str(full["header:Received"]) == "" {
			t.Errorf("%s: Email/get bodyValues %q, Received %v", x.rc.Email, text[:min(len(text), 60)], full["header:Received"])
		}

		parsed := x.rc.One(t, "Email/parse", map[string]any{"accountId": x.rc.Account, "blobIds": []string{blob},
			"properties": []string{"subject", "size", "header:Delivered-To:asText", "bodyValues", "textBody"}, "fetchTextBodyValues": true})
		p := member(parsed["parsed"], blob)
		if p == nil || p["subject"] != "Quarterly" || p["header:Delivered-To:asText"] != x.rc.Email || p["size"] != float64(len(raw)) {
			t.Errorf("%s: Email/parse %v", x.rc.Email, parsed)
		}

		q := x.rc.One(t, "Email/query", map[string]any{"accountId": x.rc.Account, "filter": map[string]any{"body": "copies"}})
		if ids := strs(q["ids"]); !slices.Equal(ids, []string{str(x.e["id"])}) {
			t.Errorf("%s: body search finds %v, want its copy", x.rc.Email, ids)
		}
		q = x.rc.One(t, "Email/query", map[string]any{"accountId": x.rc.Account, "filter": map[string]any{"header": []string{"Delivered-To", x.rc.Email}}})
		if ids := strs(q["ids"]); !slices.Equal(ids, []string{str(x.e["id"])}) {
			t.Errorf("%s: Delivered-To header search finds %v, want its copy", x.rc.Email, ids)
		}
	}
}

// TestLocalCopy_CopyAndDestroy checks that a recipient's copy can be copied
// into another account (RFC 8621 §4.7) and read there whole, and that
// destroying one recipient's copy leaves the other recipient's and the
// copied one whole, while the destroyer can no longer download it.
func TestLocalCopy_CopyAndDestroy(t *testing.T) {
	t.Parallel()
	srv, b, c, eb, ec := localCopies(t)
	d := srv.NewUser(t, "d@example.test")
	want := map[string][]byte{"b": downloadBlob(t, b, str(eb["blobId"])), "c": downloadBlob(t, c, str(ec["blobId"]))}

	srv.Admin(t, "share", "b@example.test", "--with", "d@example.test", "--rights", "readAdvanced", "--mailbox", "Inbox")
	r := d.CallUsing(t, usingShare, jmaptest.Call{Name: "Email/copy", Args: map[string]any{
		"fromAccountId": b.Account, "accountId": d.Account,
		"create": map[string]any{"k": map[string]any{"id": str(eb["id"]), "mailboxIds": map[string]any{mailboxByRole(t, d, "inbox"): true}}}}})
	k := member(r.MethodResponses[0].Args["created"], "k")
	if k == nil {
		t.Fatalf("Email/copy: %+v", r.MethodResponses)
	}
	if k["blobId"] != eb["blobId"] || k["size"] != float64(len(want["b"])) {
		t.Errorf("copied email: blobId %v size %v, want %v and %d", k["blobId"], k["size"], eb["blobId"], len(want["b"]))
	}

	if res := setEmails(t, b, map[string]any{"destroy": []string{str(eb["id"])}}); !slices.Contains(strs(res["destroyed"]), str(eb["id"])) {
		t.Fatalf("destroy b's copy: %v", res)
	}
	if got := downloadBlob(t, c, str(ec["blobId"])); !bytes.Equal(got, want["c"]) {
		t.Errorf("c's copy after b's destroy: %d bytes, want %d", len(got), len(want["c"]))
	}
	if got := downloadBlob(t, d, str(eb["blobId"])); !bytes.Equal(got, want["b"]) {
		t.Errorf("d's copied email after b's destroy: %d bytes, want %d", len(got), len(want["b"]))
	}
	got := getEmail(t, c, str(ec["id"]), map[string]any{"properties": []string{"bodyValues"}, "fetchAllBodyValues": true})
	if len(got["bodyValues"].(map[string]any)) == 0 {
		t.Errorf("c's copy has no body values after b's destroy: %v", got)
	}
	resp, _ := b.Do(t, http.MethodGet, "/jmap/download/"+b.Account+"/"+str(eb["blobId"])+"/m.eml", nil, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("b downloads its destroyed copy: %s, want 404", resp.Status)
	}
}

// TestLocalCopy_LargeMessage checks local delivery of a message too large
// for the delivering transaction to store itself (its copies are stored
// before it): each recipient gets the whole message behind its own trace
// fields.
func TestLocalCopy_LargeMessage(t *testing.T) {
	t.Parallel()
	srv := jmaptest.Start(t)
	a := srv.NewUser(t, "a@example.test")
	b := srv.NewUser(t, "b@example.test")
	c := srv.NewUser(t, "c@example.test")
	body := strings.Repeat("A large body line, long enough to fold nothing.\r\n", 30_000) // 1.5 MB
	eid := draft(t, a, map[string]any{"to": to(b.Email, c.Email), "bodyValues": map[string]any{"b": map[string]any{"value": body}}})
	sent := getEmail(t, a, eid, map[string]any{"properties": []string{"blobId"}})
	raw := downloadBlob(t, a, str(sent["blobId"]))
	if len(raw) < 1<<20+100_000 {
		t.Fatalf("the message has %d octets, want well over 1 MiB", len(raw))
	}
	submitted(t, submit(t, a, map[string]any{"identityId": ownIdentity(t, a), "emailId": eid}, nil))
	for _, rc := range []*jmaptest.Client{b, c} {
		got := inbox(t, rc, "blobId", "size")
		if len(got) != 1 {
			t.Fatalf("%s inbox: %v", rc.Email, got)
		}
		copy := downloadBlob(t, rc, str(got[0]["blobId"]))
		if !strings.HasPrefix(string(copy), "Return-Path: <a@example.test>\r\nDelivered-To: "+rc.Email+"\r\n") ||
			!bytes.HasSuffix(copy, raw) || got[0]["size"] != float64(len(copy)) {
			t.Errorf("%s: copy of %d octets (size %v) is not its trace fields and the %d octets sent", rc.Email, len(copy), got[0]["size"], len(raw))
		}
	}
}
