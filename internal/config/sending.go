package config

import "time"

// Submission tunes sending mail (RFC 8621 §7), table [submission].
type Submission struct {
	// MaxDelayedSend is the longest a client may hold a submission back
	// (FUTURERELEASE, RFC 4865), advertised as maxDelayedSend; 0 turns
	// delayed sending off (default "168h").
	MaxDelayedSend Duration `toml:"max_delayed_send"`
	// MaxRecipients is the most envelope recipients of one submission
	// (default 100).
	MaxRecipients int `toml:"max_recipients"`
	// MaxSize is the largest message that may be sent, in octets
	// (default 25000000).
	MaxSize int64 `toml:"max_size"`
	// MaxPerHour is how many submissions one account may make within an
	// hour before it is refused with forbiddenToSend (default 1000).
	MaxPerHour int `toml:"max_per_hour"`
	// VacationPeriod is how long a vacation response waits before it
	// answers the same sender again (RFC 3834 §2; default "168h").
	VacationPeriod Duration `toml:"vacation_period"`
}

// Relay is the SMTP relay that mail to addresses outside this server goes
// through, table [relay]. Without a host, such mail is refused.
type Relay struct {
	// Host is the relay's host name or address (default "": no relay).
	Host string `toml:"host"`
	// Port is the relay's submission port (default 587).
	Port int `toml:"port"`
	// Username and Password log in with AUTH PLAIN; both or neither
	// (default "": no login).
	Username string `toml:"username"`
	Password string `toml:"password"`
	// Insecure allows a relay without STARTTLS; only for a relay on the
	// same host or a trusted network (default false: STARTTLS required).
	Insecure bool `toml:"insecure"`
	// CAFile is a PEM file of certificates to trust for the relay's
	// STARTTLS instead of the system's (default "").
	CAFile string `toml:"ca_file"`
	// HelloName is the name given in EHLO (default "": the host name).
	HelloName string `toml:"hello_name"`
	// Timeout bounds one delivery attempt (default "2m").
	Timeout Duration `toml:"timeout"`
	// RetryFor is how long a message the relay refuses for now is tried
	// again before it bounces with a DSN (default "48h").
	RetryFor Duration `toml:"retry_for"`
	// RetryFirst is the wait before the first retry; each later wait
	// doubles, up to an hour (default "1m").
	RetryFirst Duration `toml:"retry_first"`
}

func defaultSubmission() Submission {
	return Submission{
		MaxDelayedSend: Duration{Duration: 7 * 24 * time.Hour},
		MaxRecipients:  100,
		MaxSize:        25_000_000,
		MaxPerHour:     1000,
		VacationPeriod: Duration{Duration: 7 * 24 * time.Hour},
	}
}

func defaultRelay() Relay {
	return Relay{
		Port:       587,
		Timeout:    Duration{Duration: 2 * time.Minute},
		RetryFor:   Duration{Duration: 48 * time.Hour},
		RetryFirst: Duration{Duration: time.Minute},
	}
}

// validateSending checks the [submission] and [relay] tables.
func (c Config) validateSending(bad func(key, format string, a ...any), positive func(string, int64),
	duration func(string, Duration, time.Duration)) {
	s := c.Submission
	duration("submission.max_delayed_send", s.MaxDelayedSend, 0)
	positive("submission.max_recipients", int64(s.MaxRecipients))
	positive("submission.max_size", s.MaxSize)
	positive("submission.max_per_hour", int64(s.MaxPerHour))
	duration("submission.vacation_period", s.VacationPeriod, time.Second)
	r := c.Relay
	if r.Host == "" {
		if r.Username != "" || r.Password != "" {
			bad("relay.host", "must be set when relay.username or relay.password is")
		}
		return
	}
	if r.Port < 1 || r.Port > 65535 {
		bad("relay.port", "must be 1 to 65535, not %d", r.Port)
	}
	if (r.Username == "") != (r.Password == "") {
		if r.Username == "" {
			bad("relay.username", "must be set together with relay.password")
		} else {
			bad("relay.password", "must be set together with relay.username")
		}
	}
	duration("relay.timeout", r.Timeout, time.Millisecond)
	duration("relay.retry_for", r.RetryFor, 0)
	duration("relay.retry_first", r.RetryFirst, time.Millisecond)
}
