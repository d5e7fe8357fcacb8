"""The HoReCa staff bot: handlers (the cabinet), texts, keyboards, and the notices it delivers."""
