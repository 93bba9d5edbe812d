package webhooks

import (
	"slices"
	"strings"
)

// Event types of the platform that endpoints subscribe to.
const (
	EventCourtDateScheduled = "court_date.scheduled"
	EventCourtDateChanged   = "court_date.changed"
	EventCourtDateCancelled = "court_date.cancelled"
	EventReminderSent       = "reminder.sent"
	EventReminderFailed     = "reminder.failed"
	EventContactOptedOut    = "contact.opted_out"

	// EventTest is the type of test events sent from the console. It is not
	// in the catalogue: every endpoint receives test events when asked.
	EventTest = "webhook.test"
)

// EventType is one entry of the event catalogue.
type EventType struct {
	Name        string
	Description string
}

// Catalogue returns every event type an endpoint can subscribe to, in the
// order the console lists them. It is the one definition of the catalogue.
func Catalogue() []EventType {
	return []EventType{
		{EventCourtDateScheduled, "A court date was scheduled for a case participant."},
		{EventCourtDateChanged, "A scheduled court date moved, or its courtroom or details changed."},
		{EventCourtDateCancelled, "A scheduled court date was cancelled."},
		{EventReminderSent, "A court-date reminder was sent to a participant."},
		{EventReminderFailed, "A court-date reminder could not be delivered."},
		{EventContactOptedOut, "A participant opted out of reminders on a contact channel."},
	}
}

// IsEventType reports whether name is in the catalogue.
func IsEventType(name string) bool {
	for _, e := range Catalogue() {
		if e.Name == name {
			return true
		}
	}
	return false
}

// normalizeEvents checks a subscription list against the catalogue and returns
// it without duplicates in catalogue order, with the names it did not know.
func normalizeEvents(names []string) (out, unknown []string) {
	want := map[string]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !IsEventType(n) {
			if !slices.Contains(unknown, n) {
				unknown = append(unknown, n)
			}
			continue
		}
		want[n] = true
	}
	for _, e := range Catalogue() {
		if want[e.Name] {
			out = append(out, e.Name)
		}
	}
	return out, unknown
}

// SplitEvents returns the event types stored in an endpoint's subscription.
func SplitEvents(stored string) []string { return strings.Fields(stored) }

func joinEvents(names []string) string { return strings.Join(names, " ") }

// Subscribed reports whether a stored subscription includes eventType.
func Subscribed(stored, eventType string) bool {
	return slices.Contains(strings.Fields(stored), eventType)
}
