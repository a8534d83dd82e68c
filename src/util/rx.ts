// The rxjs classes the daemon uses, each from its own module. `require('rxjs')` runs rxjs's
// CommonJS index, which loads all ~220 of its modules (every operator) although the daemon uses
// none of the operators: ~0.9 MB of idle RSS. The classes are the very ones 'rxjs' exports.
export { Observable } from 'rxjs/internal/Observable';
export { Subject } from 'rxjs/internal/Subject';
export { Subscription } from 'rxjs/internal/Subscription';
export { config } from 'rxjs/internal/config';
