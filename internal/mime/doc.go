// Package mime parses RFC 5322 messages and their MIME structure for the
// Email object of RFC 8621 §4.1.
//
// Parse reads a message best-effort: it never panics, does bounded work
// (multipart nesting is followed maxDepth levels deep and at most maxParts
// parts are made; deeper or further content is an opaque part), and keeps
// only offsets into the raw bytes, so Content decodes a part on demand
// without copying the message.
//
// Part ids follow IMAP section numbers (RFC 3501 §6.4.5): the body of a
// single-part message is "1"; the children of a multipart are "1", "2", ...
// and their children "2.1", "2.2", .... Multipart parts have no id
// (RFC 8621 §4.1.4: partId is null exactly for multipart/*). The same bytes
// always give the same ids.
//
// The header forms of RFC 8621 §4.1.2 (AsRaw, AsText, AsAddresses,
// AsGroupedAddresses, AsMessageIDs, AsDate, AsURLs) work on one raw header
// value as found in Header.Value. Charsets are decoded through
// github.com/emersion/go-message/charset.
package mime
