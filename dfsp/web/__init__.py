"""The DFSP's back-office web pages (server-rendered HTML under ``/admin/``):
``dfsp.web.back_office`` serves bulk payments to makers and checkers."""
