"""The DFSP's USSD journeys, one module per journey; ``gateway.ussd_menus.dfsp_menu``
puts them together."""
