// Package delivery moves submitted mail to its recipients: into the Inbox
// of accounts on this server (local delivery, groups expanded to their
// members, shared mailboxes to their own account), and through the
// configured SMTP relay for everyone else, from a durable queue kept in
// the store.
//
// The package knows principals and the store but not the JMAP mail model:
// putting a message into an Inbox and recording delivery statuses on an
// EmailSubmission is the Host's job, which the methods package implements.
//
// Queue layout (store meta keys):
//
//	outq\x00<notBefore, 16 hex digits of Unix nanoseconds>\x00<job id> → Job (JSON)
//	outqid\x00<job id>                                                  → the outq key above
//
// A job's id is the id of the EmailSubmission it belongs to, when it
// belongs to one. A job holds a reference to its message blob in the
// sender's account until it is finished, so the blob outlives the Email.
package delivery
