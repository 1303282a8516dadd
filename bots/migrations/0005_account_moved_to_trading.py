# The account's state moved to trading.TradingAccount (trading 0002 copied it there first).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('bots', '0004_bot_limits'),
        ('trading', '0002_trading_account'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='bot',
            name='cash',
        ),
        migrations.RemoveField(
            model_name='bot',
            name='day_start_date',
        ),
        migrations.RemoveField(
            model_name='bot',
            name='day_start_equity',
        ),
        migrations.RemoveField(
            model_name='bot',
            name='peak_equity',
        ),
    ]
