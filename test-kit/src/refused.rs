//! An address that refuses every connection, for as long as the returned socket lives:
//! the port is bound (so nothing else can take it) but not listening, so a connect gets
//! a reset at once. A port taken from a dropped listener could be reused meanwhile.

use socket2::{Domain, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr};

pub struct RefusedPort {
    _socket: Socket,
    pub url: String,
}

impl RefusedPort {
    pub fn new() -> Self {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
        socket
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .expect("bind a loopback port");
        let addr = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("a bound address");
        Self {
            _socket: socket,
            url: format!("http://{addr}"),
        }
    }
}

impl Default for RefusedPort {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn connections_are_refused_while_it_lives() {
        let port = super::RefusedPort::new();
        let addr = port.url.trim_start_matches("http://");
        let err = std::net::TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
