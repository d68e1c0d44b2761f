/* agent_config.h -- forwards to config/config.h, config/'s one public header, where
 * firn-agent's configuration is part 3.  Kept only so that code written against this
 * header on branches still in flight builds after they merge; includes move
 * to config/config.h and this file goes in the next architecture session. */
#include "config/config.h"
