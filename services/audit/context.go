package audit

import "context"

type detailsKey struct{}

// WithDetails returns a context whose audit records carry extra details, such
// as the id of a linked multi-step operation, even when a feature service
// writes the record. An event's own details win over these.
func WithDetails(ctx context.Context, d map[string]string) context.Context {
	merged := map[string]string{}
	if prev, ok := ctx.Value(detailsKey{}).(map[string]string); ok {
		for k, v := range prev {
			merged[k] = v
		}
	}
	for k, v := range d {
		merged[k] = v
	}
	return context.WithValue(ctx, detailsKey{}, merged)
}

func contextDetails(ctx context.Context, own map[string]string) map[string]string {
	extra, ok := ctx.Value(detailsKey{}).(map[string]string)
	if !ok || len(extra) == 0 {
		return own
	}
	out := make(map[string]string, len(extra)+len(own))
	for k, v := range extra {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}
