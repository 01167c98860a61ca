"""The classroom kiosk: camera frames -> badge token -> the portal. Frames stay in memory."""
