from tests.export.net import register

register()
