"""Reliability harnesses (issue 9): crash safety, concurrency, hostile input.

The modules drive the real servers (posted upasfs, imap4d, pop3,
upas.mbappend) as processes and check the mailbox against a ledger kept by
the test.  `python -m tests.reliability` runs the long modes.
"""
