"""Device identity on the broker: who may connect, and which topic each account may use.

The site file says which devices exist; from it this package writes what a Mosquitto broker
needs to let only those devices speak, each only on its own telemetry topic:

- `passwords.py`: Mosquitto's password-file format (PBKDF2-SHA512, `$7$`) and random secrets;
- `acl.py`: the accounts of a site (one per device, the gateway's read-only one, an optional
  simulator) and the `acl_file` that confines each of them;
- `accounts.py`: the generated directory: password file, ACL and the secrets file (0600), kept
  across runs, one account's secret rotated at a time;
- `certs.py`: the mutual-TLS alternative: a CA, the broker's certificate and one client
  certificate per account whose CN is the account name (`use_identity_as_username`);
- `revocation.py`: one account's certificate revoked on the list the broker checks (`crlfile`);
- `openssl.py`: the `openssl` command and the certificate directory's layout.

docs/security.md tells how to deploy them.
"""

from mqtt.identity.acl import GATEWAY_USER, SIMULATOR_USER, Account, site_accounts
from mqtt.identity.errors import IdentityError

__all__ = ["GATEWAY_USER", "SIMULATOR_USER", "Account", "IdentityError", "site_accounts"]
