"""The bundled interledger client; built in the clearing issue."""
