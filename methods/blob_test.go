package methods_test

import (
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/jmapd/jmapd/jmaptest"
)

// RFC 9404 §4.1, §4.2: Blob/upload concatenates its sources, and Blob/get
// reads them back by creation id reference.
func TestBlob_UploadConcatenatesAndGetReads(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	r := alice.Call(t,
		jmaptest.Call{Name: "Blob/upload", Args: map[string]any{"accountId": alice.Account, "create": map[string]any{
			"b4": map[string]any{"data": []any{map[string]any{"data:asText": "The quick brown fox jumped over the lazy dog."}}},
		}}},
		jmaptest.Call{Name: "Blob/upload", Args: map[string]any{"accountId": alice.Account, "create": map[string]any{
			"cat": map[string]any{"data": []any{
				map[string]any{"data:asText": "How"},
				map[string]any{"blobId": "#b4", "length": 7, "offset": 3},
				map[string]any{"data:asText": "was t"},
				map[string]any{"blobId": "#b4", "length": 1, "offset": 1},
				map[string]any{"data:asBase64": "YXQ/"},
			}},
		}}},
		jmaptest.Call{Name: "Blob/get", Args: map[string]any{"accountId": alice.Account, "ids": []string{"#cat"},
			"properties": []string{"data:asText", "size", "digest:sha"}}},
	)
	if len(r.MethodResponses) != 3 {
		t.Fatalf("responses: %+v", r.MethodResponses)
	}
	got := r.MethodResponses[2].Args["list"].([]any)[0].(map[string]any)
	if got["data:asText"] != "How quick was that?" || got["size"] != float64(19) {
		t.Errorf("Blob/get = %v", got)
	}
	// RFC 9404 §4.1.2 names this blob Gcc60576f...: its SHA-1 in hex.
	sha, _ := hex.DecodeString("cc60576f036321ae6e8037ffc56bdee589bd3e23")
	if got["digest:sha"] != base64.StdEncoding.EncodeToString(sha) {
		t.Errorf("digest:sha = %v", got["digest:sha"])
	}
}

// RFC 8620 §6.3: Blob/copy reports unknown blobs in notCopied and needs an
// account the caller may write.
func TestBlob_CopyChecks(t *testing.T) {
	srv := jmaptest.Start(t)
	alice := srv.NewUser(t, "alice@example.test")
	bob := srv.NewUser(t, "bob@example.test")
	res := alice.One(t, "Blob/copy", map[string]any{"fromAccountId": alice.Account, "accountId": alice.Account,
		"blobIds": []string{"Gnope"}})
	nc, _ := res["notCopied"].(map[string]any)
	if e, _ := nc["Gnope"].(map[string]any); e["type"] != "notFound" || res["copied"] != nil {
		t.Errorf("Blob/copy = %v", res)
	}
	if typ := alice.Error(t, "Blob/copy", map[string]any{"fromAccountId": alice.Account, "accountId": bob.Account,
		"blobIds": []string{}}); typ != "accountNotFound" {
		t.Errorf("copy into a foreign account: %s", typ)
	}
}
