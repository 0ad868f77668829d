"""factotum: the authentication agent (docs/spec/fs-auth.md §2).

rpc.py holds the conversation state machine, keys.py the key ring (the
attribute syntax is lib/attrs.py, shared with the client lib/factotum.py),
one module per protocol (apop.py for apop and cram, p9cr.py, p9sk1.py,
p9any.py, pass_.py), asclient.py the auth-server link, fs.py the 9P file
tree and __main__.py the command.
"""
