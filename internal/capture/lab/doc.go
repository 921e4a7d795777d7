// Package lab holds the end-to-end test of live capture: two network namespaces joined by a veth
// pair, dnsmasq as the resolver, a glibc client whose resolv.conf has a search domain, nftables
// dropping one name's queries, `analyzer serve` as the store, and `collector capture` on the
// client's veth shipping rows to it over HTTP with clickhouse-go, checked against tcpdump on the
// same interface. A second test captures on lo and on any in a namespace of its own, with each
// source, and checks that a loopback packet, which the kernel hands a packet socket twice, is
// recorded once. They need root; they skip where network namespaces cannot be made.
//
// The package has no code of its own outside its tests.
package lab
