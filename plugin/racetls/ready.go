package racetls

// Ready implements ready.Readiness: racetls is ready once an upstream has
// answered, a query or a keepalive probe, since it started. An upstream that
// cannot be reached or whose certificate does not verify never answers, so a
// rollout of a broken configuration stays unready.
func (rt *RaceTLS) Ready() bool {
	if !rt.started.Load() {
		return false
	}
	for _, u := range rt.ups() {
		if u.answered.Load() {
			return true
		}
	}
	return false
}
