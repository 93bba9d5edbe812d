package apiclients

// OnAuthStep makes Authenticate call f at each of its costly steps
// ("lookup", "verify").
func OnAuthStep(s *Service, f func(step string)) { s.authStep = f }
