// Package methods holds the JMAP data types of jmapd, one file per type,
// and the account model that tells which accounts a caller reaches. Each
// file registers its methods on a jmap.Registry; storage goes through the
// store interface only.
package methods
