"""Payment gateways and the crediting of their verified callbacks."""
