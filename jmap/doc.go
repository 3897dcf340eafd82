// Package jmap is the JMAP core protocol (RFC 8620): wire types, the Session
// resource, request decoding under the core limits, result references,
// PatchObject, the method dispatcher, the generic /get /changes /set /copy
// /query /queryChanges machinery and the HTTP handlers for the API, upload
// and download endpoints.
//
// Invariants:
//   - A method call either answers its response or exactly one method error;
//     a panic inside it becomes serverFail for that call alone.
//   - A rejected call changes nothing stored: /set validates every object of
//     a call inside one transaction and reports per-object SetErrors.
//   - Something the caller may not read answers exactly like something that
//     does not exist.
//
// The package knows nothing about mail or about the storage engine; data
// types plug in through Registry.Handle and the Type description used by the
// generic helpers.
package jmap
