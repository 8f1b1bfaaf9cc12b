<p>Receipt {{ it.number }}</p>
<p>Paid by {{ customer(it.customer).name }}</p>
<p>{{ it.paid | money }}</p>
