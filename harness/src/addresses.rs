//! Fixed addresses on a stack's network, so that no service ever asks the engine's DNS.
//!
//! Every container of a stack has its own address on the stack's network and every peer's
//! name in its `/etc/hosts`, in the containers the harness creates and in those the runbook's
//! Compose creates from the stack's compose file. Docker 20.10 before 20.10.27 deadlocks its
//! network controller when two containers leave one network at once (moby/moby#46661); the
//! embedded DNS takes the controller's lock several times per query, and the services' lookups
//! while their peers restart (hundreds a second) are what holds that lock when the race is lost.
//! Names from `/etc/hosts` take no lock in the engine at all.

use std::net::Ipv4Addr;

use crate::services::Service;

/// The first two octets of every stack's subnet: one /24 per stack out of 10.213.0.0/16.
const PREFIX: [u8; 2] = [10, 213];
/// The host part of the first service's address; the next services follow in `Service::ALL`
/// order (`.1` is the network's gateway).
const FIRST_HOST: u8 = 10;

/// A stack network's /24 and the address of each service on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackSubnet {
    third: u8,
}

impl StackSubnet {
    /// Every subnet a stack may take, starting at `seed`'s and then in order: the first the
    /// engine accepts (no other network overlaps it) is the stack's.
    pub fn candidates(seed: u64) -> impl Iterator<Item = StackSubnet> {
        let start = (seed % 256) as u16;
        (0..256u16).map(move |i| StackSubnet {
            third: ((start + i) % 256) as u8,
        })
    }

    /// `10.213.N.0/24`.
    pub fn cidr(&self) -> String {
        format!("{}.{}.{}.0/24", PREFIX[0], PREFIX[1], self.third)
    }

    /// `service`'s address on the stack's network.
    pub fn address(&self, service: Service) -> Ipv4Addr {
        let index = Service::ALL
            .iter()
            .position(|s| *s == service)
            .expect("every service is in Service::ALL");
        Ipv4Addr::new(PREFIX[0], PREFIX[1], self.third, FIRST_HOST + index as u8)
    }

    /// Every name a service answers to (its aliases) with its address, in `Service::ALL` order:
    /// Docker's `ExtraHosts` / Compose's `extra_hosts` entries, `NAME:ADDRESS`.
    pub fn extra_hosts(&self) -> Vec<String> {
        Service::ALL
            .iter()
            .flat_map(|s| {
                let address = self.address(*s);
                s.aliases()
                    .into_iter()
                    .map(move |alias| format!("{alias}:{address}"))
            })
            .collect()
    }
}

/// Whether the engine refused a network's subnet because another network has it (the next
/// candidate is then tried).
pub fn is_overlap(message: &str) -> bool {
    message.contains("overlaps")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_its_own_address_in_the_stacks_subnet() {
        let subnet = StackSubnet::candidates(7).next().unwrap();
        assert_eq!(subnet.cidr(), "10.213.7.0/24");
        let addresses: Vec<_> = Service::ALL.iter().map(|s| subnet.address(*s)).collect();
        assert_eq!(addresses[0], Ipv4Addr::new(10, 213, 7, 10));
        let mut unique = addresses.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), Service::ALL.len());
    }

    #[test]
    fn every_alias_is_in_the_hosts_entries() {
        let subnet = StackSubnet::candidates(300).next().unwrap();
        let hosts = subnet.extra_hosts();
        assert!(hosts.contains(&"dagi-postgres:10.213.44.10".to_string()));
        assert!(hosts.contains(&"postgres:10.213.44.10".to_string()));
        let aliases: usize = Service::ALL.iter().map(|s| s.aliases().len()).sum();
        assert_eq!(hosts.len(), aliases);
    }

    #[test]
    fn the_candidates_cover_every_subnet_once() {
        let mut thirds: Vec<_> = StackSubnet::candidates(200).map(|s| s.third).collect();
        assert_eq!(thirds[0], 200);
        thirds.sort();
        thirds.dedup();
        assert_eq!(thirds.len(), 256);
    }

    #[test]
    fn an_overlapping_pool_is_recognised() {
        assert!(is_overlap(
            "Pool overlaps with other one on this address space"
        ));
        assert!(!is_overlap("network with name x already exists"));
    }
}
