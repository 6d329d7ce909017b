<?php
// The two benchmark charts of docs/performance.md in Symfony Workflow (Debian's
// php-symfony-workflow, 5.4): the 10-state chain s0 -> ... -> s9 -> s0 with one
// transition `next` from every place, plain (no event dispatcher) and with a guard
// on every transition (a listener on workflow.chain_guard.guard that blocks unless
// $subject->n >= 0, as `case.n >= 0` in bench/charts/chain_guard.yaml).
//   php bench.php [fires]
// Install: apt-get install php-cli php-symfony-workflow php-symfony-event-dispatcher
require_once '/usr/share/php/Symfony/Component/Workflow/autoload.php';
require_once '/usr/share/php/Symfony/Component/EventDispatcher/autoload.php';

use Symfony\Component\EventDispatcher\EventDispatcher;
use Symfony\Component\Workflow\DefinitionBuilder;
use Symfony\Component\Workflow\Event\GuardEvent;
use Symfony\Component\Workflow\MarkingStore\MethodMarkingStore;
use Symfony\Component\Workflow\StateMachine;
use Symfony\Component\Workflow\Transition;

final class Zaak
{
    public string $state = 's0';
    public int $n = 0;
    public function getState(): string { return $this->state; }
    public function setState(string $state, array $context = []): void { $this->state = $state; }
}

function chain(string $name, ?EventDispatcher $dispatcher): StateMachine
{
    $b = new DefinitionBuilder();
    for ($i = 0; $i < 10; $i++) $b->addPlace("s$i");
    for ($i = 0; $i < 10; $i++) $b->addTransition(new Transition('next', "s$i", 's' . (($i + 1) % 10)));
    $b->setInitialPlaces(['s0']);
    return new StateMachine($b->build(), new MethodMarkingStore(true, 'state'), $dispatcher, $name);
}

function rate(StateMachine $sm, int $n): float
{
    $z = new Zaak();
    for ($i = 0; $i < 10000; $i++) $sm->apply($z, 'next');
    $t = hrtime(true);
    for ($i = 0; $i < $n; $i++) $sm->apply($z, 'next');
    $s = (hrtime(true) - $t) / 1e9;
    if ($z->state !== 's' . (($n + 10000) % 10)) throw new RuntimeException('chain out of step');
    return $n / $s;
}

$fires = (int)($argv[1] ?? 200000);
$plain = chain('chain', null);
echo json_encode(['bench' => 'symfony', 'workload' => 'chain', 'method' => 'apply', 'fires' => $fires,
                  'fires_per_s' => rate($plain, $fires)]), "\n";

$d = new EventDispatcher();
$d->addListener('workflow.chain_guard.guard', function (GuardEvent $e) {
    if (!($e->getSubject()->n >= 0)) $e->setBlocked(true, 'n < 0');
});
$guarded = chain('chain_guard', $d);
echo json_encode(['bench' => 'symfony', 'workload' => 'chain_guard', 'method' => 'apply', 'fires' => $fires,
                  'fires_per_s' => rate($guarded, $fires)]), "\n";
