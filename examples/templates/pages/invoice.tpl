<h1>Invoice {{ it.number }} for {{ customer(it.customer).name }}</h1>
<ul>
{% for line of it.lines %}  <li>{{ line.qty }} x {{ line.item }}: {{ line.qty * line.cents | money }}</li>
{% end %}</ul>
{% if it.note %}<p>{{ it.note }}</p>
{% end %}<p>Total: {{ it.lines.reduce((sum, l) => sum + l.qty * l.cents, 0) | money }}</p>
