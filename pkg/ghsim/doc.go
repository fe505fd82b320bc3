// Package ghsim is a GitHub simulator for tests, benchmarks and the demo: the
// Actions artifact REST endpoints with GitHub's rules (Link pagination,
// 302 to a different blob host with URLs that expire, 410 for expired
// artifacts, rate-limit headers, secondary limits, App installation tokens),
// a blob host with Range support and injectable faults, and realistic signed
// webhook payloads.
package ghsim
