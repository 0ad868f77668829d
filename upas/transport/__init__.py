"""What the servers share to talk to a client: a session's requests to its
driver (events.py), the buffered connection with its deadlines (conn.py)
and TLS (tls.py).  Used by pop3, imap4d and the launcher."""
